/**
 * Layer 2: the staging stack (Pulumi.staging.yaml, FR-024) runs the production program on its own
 * context and namespace: judged like prod (Kubernetes schema, the kubelet's file rules, Pod Security
 * "restricted"), no password outside a secret, and the outputs contract.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parseStackOutputs } from "../../runtime/outputs";
import { contractOutputs, MockHarness, resolve } from "./harness";
import { validateRecorded } from "./k8s-schema";
import { fileAccessProblems, podTemplates, restrictedProblems } from "./pod-audit";

const h = new MockHarness();
let program: typeof import("../../index");

before(async () => {
  program = await h.runProgram("staging");
});

describe("staging stack on Kubernetes", () => {
  it("deploys into its own context and namespace, through the explicit provider", () => {
    assert.deepEqual(h.ofType("pulumi:providers:kubernetes").map((p) => [p.name, p.inputs.context]), [["shopfds-staging-k8s", "shopfds-staging"]]);
    assert.deepEqual(h.ofType("kubernetes:core/v1:Namespace").map((n) => n.inputs.metadata.name).sort(), ["shopfds-staging", "shopfds-staging-log-shipping"]);
    assert.deepEqual([...new Set(h.resources.filter((r) => r.type.startsWith("kubernetes:") && r.inputs.metadata?.namespace).map((r) => r.inputs.metadata.namespace))].sort(), ["shopfds-staging", "shopfds-staging-log-shipping"]);
  });

  it("is judged as a cluster would judge it: schema, readable files, Pod Security restricted", async () => {
    assert.deepEqual((await validateRecorded(h.resources)).filter((r) => r.problems.length > 0), []);
    const pods = podTemplates(h.resources);
    assert.ok(pods.length >= 10, `pods audited: ${pods.length}`);
    assert.deepEqual(pods.flatMap(fileAccessProblems), []);
    assert.deepEqual(pods.flatMap(restrictedProblems), []);
  });

  it("keeps every generated password inside secrets and exports the outputs contract", async () => {
    assert.deepEqual(h.leaks(), []);
    const outputs = parseStackOutputs(await contractOutputs(program), "staging outputs");
    assert.deepEqual(outputs.postgres.replicas, [{ host: "shopfds-staging-pg-ro.shopfds-staging.svc", port: 5432 }], "the replicas behind the CloudNativePG -ro Service");
    assert.equal((await resolve(program.sentry!.environment)).value, "staging", "its own Sentry environment");
  });
});
