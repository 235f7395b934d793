/**
 * Runs one small program under the mock harness in its own process and prints what settle() says, so
 * the harness test can show that what would be silently empty under naive mocks fails loudly.
 * (node --test fails whichever test is running on an unhandled rejection, so this runs outside it.)
 */
import * as docker from "@pulumi/docker";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { MockHarness } from "./harness";

const cases: Record<string, () => unknown> = {
  "known-resources": () => new docker.Network("net", { name: "net" }),
  "provider-call": () => pulumi.runtime.invoke("kubernetes:yaml:decode", { text: "kind: ConfigMap" }).catch(() => undefined),
  "yaml-group": () => new k8s.yaml.ConfigGroup("manifests", { yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n" }),
  "unknown-type": () => new docker.Image("app", { imageName: "shopfds/app:dev", build: { context: "." }, skipPush: true }),
};

process.on("unhandledRejection", () => {}); // reported by settle() below
(async () => {
  const h = new MockHarness();
  await h.install("dev");
  await cases[process.argv[2]]();
  try {
    await h.settle();
    console.log(`settled: ${h.resources.map((r) => r.type).join(", ")}`);
    process.exit(0);
  } catch (e) {
    console.log(`refused: ${(e as Error).message}`);
    process.exit(1);
  }
})();
