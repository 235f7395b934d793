/**
 * Layer 2: the Kubernetes platform's protection of data (the mock engine does not see `protect`, so
 * it is read from the resource objects): the namespace — whose deletion or replacement deletes every
 * claim in it — and every workload with volumes are protected; stateless ones are not.
 */
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { before, describe, it } from "node:test";
import { KubernetesPlatform } from "../../components/platform/kubernetes";
import type { ServiceSpec } from "../../components/platform/types";
import { MockHarness } from "./harness";

const h = new MockHarness();
const spec = (name: string, volumes: ServiceSpec["volumes"]): ServiceSpec => ({
  name,
  role: "r",
  instance: name,
  image: "busybox:1.36",
  ports: [{ name: "p", port: 8080 }],
  healthCheck: { command: ["true"], intervalSeconds: 10, timeoutSeconds: 3, retries: 3, startPeriodSeconds: 30 },
  resources: { cpu: "100m", memory: "64Mi" },
  replicas: 1,
  runAs: { uid: 1000, gid: 1000 },
  volumes,
});
const isProtected = (r: pulumi.Resource) => (r as unknown as { __protect?: boolean }).__protect === true;

before(async () => {
  await h.install("platform-test", { "shopfds:platform": "kubernetes" });
});

describe("Kubernetes platform: protection of data", () => {
  it("protects (and retains) the namespace and every workload with volumes, not the stateless ones", () => {
    const parent = new pulumi.ComponentResource("shopfds:test:Parent", "parent");
    const platform = new KubernetesPlatform("t", { namespace: "t", context: "t" });
    const stateful = platform.deploy(spec("db", [{ name: "data", mountPath: "/data", size: "1Gi" }]), parent);
    const stateless = platform.deploy(spec("web", []), parent);
    assert.equal(isProtected(platform.namespace), true);
    assert.equal(isProtected(stateful.resources[0]!), true, "the StatefulSet holding a volume");
    assert.equal(isProtected(stateless.resources[0]!), false, "nothing to lose");
  });

  it("protect: false lifts it (a throwaway cluster, e.g. the kind job)", () => {
    const parent = new pulumi.ComponentResource("shopfds:test:Parent", "parent2");
    const platform = new KubernetesPlatform("u", { namespace: "u", context: "u", protect: false });
    const stateful = platform.deploy(spec("db2", [{ name: "data", mountPath: "/data", size: "1Gi" }]), parent);
    assert.deepEqual([isProtected(platform.namespace), isProtected(stateful.resources[0]!)], [false, false]);
  });

  it("refuses a host path (a Docker feature: on Kubernetes a node's files are an operator's agent's business)", () => {
    const parent = new pulumi.ComponentResource("shopfds:test:Parent", "parent3");
    const platform = new KubernetesPlatform("v", { namespace: "v", context: "v" });
    assert.throws(() => platform.deploy({ ...spec("shipper", []), hostPaths: [{ hostPath: "/var/log", mountPath: "/var/log" }] }, parent), {
      message: "shipper: hostPaths are a Docker feature; on Kubernetes a node's files are an operator's agent's business",
    });
  });
});
