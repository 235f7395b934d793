/**
 * Layer 2: the kind stack (Pulumi.kind.yaml) that the end-to-end job deploys for real is the same program
 * at kind size; here it is judged as the other Kubernetes stacks are (schema, CRDs, file access, Pod
 * Security, start budgets), so what reaches the cluster in CI has passed these checks first.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parseStackOutputs } from "../../runtime/outputs";
import { contractOutputs, MockHarness } from "./harness";
import { validateRecorded } from "./k8s-schema";
import { fileAccessProblems, podTemplates, restrictedProblems } from "./pod-audit";

const h = new MockHarness();
let program: typeof import("../../index");

before(async () => {
  program = await h.runProgram("kind");
});

describe("kind stack (the end-to-end job's)", () => {
  it("is the production program at kind size: the operators, a primary and a replica, one Elasticsearch node, no backups, the image built from the checkout", () => {
    assert.deepEqual(h.ofType("pulumi:providers:kubernetes").map((p) => p.inputs.context), ["kind-shopfds"]);
    assert.deepEqual(h.ofType("kubernetes:helm.sh/v3:Release").map((r) => r.inputs.chart).sort(), ["cert-manager", "cloudnative-pg", "eck-operator", "kube-prometheus-stack"]);
    // The RabbitMQ operator's manifest holds cert-manager objects (tests/fixtures/upstream): cert-manager first.
    assert.ok(h.dependsOn(h.named("kubernetes:yaml/v2:ConfigFile", "shopfds-kind-operators-rabbitmq-cluster-operator"), "kubernetes:helm.sh/v3:Release", "shopfds-kind-operators-cert-manager"));
    assert.equal(h.named("kubernetes:postgresql.cnpg.io/v1:Cluster", "shopfds-kind-pg").inputs.spec.instances, 2);
    assert.equal(h.named("kubernetes:postgresql.cnpg.io/v1:Cluster", "shopfds-kind-pg").inputs.spec.backup, undefined);
    assert.equal(h.ofType("kubernetes:postgresql.cnpg.io/v1:ScheduledBackup").length, 0);
    assert.equal(h.named("kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch", "shopfds-kind-logging").inputs.spec.nodeSets[0].count, 1);
    assert.equal(h.named("kubernetes:apps/v1:Deployment", "shopfds-kind-service").inputs.spec.template.spec.containers[0].image, "shopfds-service:kind");
  });

  it("passes the checks a cluster would make", async () => {
    assert.deepEqual((await validateRecorded(h.resources)).filter((r) => r.problems.length > 0), []);
    const pods = podTemplates(h.resources);
    assert.deepEqual(pods.flatMap(fileAccessProblems), []);
    assert.deepEqual(pods.flatMap(restrictedProblems), []);
    assert.deepEqual(h.leaks(), []);
    assert.deepEqual(h.resources.filter((r) => r.protect || r.retainOnDelete).map((r) => r.name), [], "a throw-away stack: destroy removes everything");
    const outputs = parseStackOutputs(await contractOutputs(program), "kind outputs");
    assert.equal(outputs.postgres.primary.host, "shopfds-kind-pg-rw.shopfds-kind.svc");
  });
});
