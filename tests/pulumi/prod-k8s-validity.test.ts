/**
 * Layer 2: the prod stack's Kubernetes objects as a real cluster would judge them (no cluster runs
 * here): every object against the Kubernetes OpenAPI schema (types, required fields, unknown fields),
 * every pod's files readable by its user under the kubelet's rules, and Pod Security "restricted".
 * The checks are shown failing on broken objects too.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { MockHarness } from "./harness";
import { validateK8sObject, validateRecorded } from "./k8s-schema";
import { fileAccessProblems, podTemplates, restrictedProblems, startupBudgetProblems } from "./pod-audit";

const h = new MockHarness();

before(async () => {
  await h.runProgram("prod");
});

/** Every pod template the program declares (the operators declare PostgreSQL's, the monitoring stack's). */
const PODS = [
  "Deployment shopfds-prod-jobs-flower",
  "Deployment shopfds-prod-jobs-worker",
  "Deployment shopfds-prod-logging-es-exporter",
  "Deployment shopfds-prod-monitoring-redis-exporter",
  "Deployment shopfds-prod-service",
  "Job shopfds-prod-logging-setup",
  "Job shopfds-prod-migrate",
  "Job shopfds-prod-redis-create",
  "StatefulSet shopfds-prod-jobs-scheduler",
  "StatefulSet shopfds-prod-redis-node",
];

/**
 * How long each container needs to start (seconds), estimated independently of the probes: a Redis node
 * loads its AOF (maxmemory 2gb in prod) at 50 MB/s or better on a network disk, plus its start; RabbitMQ
 * boots, imports its definitions and joins its peers; the Node processes connect to their backends.
 */
const START_NEEDS: Record<string, number> = {
  node: Math.ceil(2048 / 50) + 10,
  service: 20,
  worker: 20,
  scheduler: 20,
  flower: 20,
  "redis-exporter": 10,
  "elasticsearch-exporter": 10,
  migrate: 0,
  "cluster-create": 0,
  "logging-setup": 0,
};

const pod = (spec: Record<string, unknown>) => ({ owner: "StatefulSet t", spec });
const container = { name: "c", image: "i", securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } } };

describe("prod stack: what the API server and the kubelet would say", () => {
  it("every Kubernetes object is valid against the Kubernetes OpenAPI schema (types, required fields, no unknown field)", async () => {
    const results = await validateRecorded(h.resources);
    assert.ok(results.length > 50, `objects validated: ${results.length}`);
    // Custom resources are judged against their operator's CRD (tests/pulumi/crd-schema.ts).
    assert.deepEqual(results.filter((r) => /^(Cluster|ScheduledBackup) /.test(r.resource)).map((r) => r.resource).sort(), ["Cluster shopfds-prod-pg", "ScheduledBackup shopfds-prod-pg-daily"]);
    assert.deepEqual(results.filter((r) => r.problems.length > 0), []);
  });

  it("the schema check catches an unknown field and a wrong type, naming where", async () => {
    const sts = { metadata: { name: "x" }, spec: { serviceName: "x", selector: { matchLabels: { a: "b" } }, template: { metadata: { labels: { a: "b" } }, spec: { containers: [{ name: "c", image: "i", imagePullPolicy: "Always" }] } } } };
    assert.deepEqual(await validateK8sObject("apps/v1", "StatefulSet", sts), []);
    const unknown = structuredClone(sts) as any;
    unknown.spec.template.spec.containers[0].readOnlyRootFS = true; // the real field is securityContext.readOnlyRootFilesystem
    assert.deepEqual(await validateK8sObject("apps/v1", "StatefulSet", unknown), ['spec.template.spec.containers[0].readOnlyRootFS: unknown field "readOnlyRootFS"']);
    const wrongType = structuredClone(sts) as any;
    wrongType.spec.replicas = "2";
    assert.deepEqual(await validateK8sObject("apps/v1", "StatefulSet", wrongType), ["spec.replicas must be integer"]);
  });

  it("every pod can read every Secret and ConfigMap file it mounts, as its own user", () => {
    const pods = podTemplates(h.resources);
    assert.deepEqual(pods.map((p) => p.owner).sort(), PODS);
    assert.deepEqual(pods.flatMap(fileAccessProblems), []);
  });

  it("the file check catches what the kubelet would refuse: 0440 root-owned secrets without fsGroup, an unknown user", () => {
    const secretMount = { volumeMounts: [{ name: "secrets", mountPath: "/run/secrets/pw", subPath: "pw" }] };
    const volumes = [{ name: "secrets", secret: { secretName: "s", defaultMode: 0o440 } }];
    assert.deepEqual(fileAccessProblems(pod({ securityContext: { runAsUser: 999, runAsGroup: 999 }, containers: [{ ...container, ...secretMount }], volumes })), [
      "StatefulSet t c: cannot read /run/secrets/pw (mode 0440 root:0, runs as 999:999 groups 999)",
    ]);
    assert.deepEqual(fileAccessProblems(pod({ securityContext: { runAsUser: 999, runAsGroup: 999, fsGroup: 999 }, containers: [{ ...container, ...secretMount }], volumes })), []);
    assert.deepEqual(fileAccessProblems(pod({ containers: [{ ...container, ...secretMount }], volumes })), ["StatefulSet t c: runAsUser is not set, so who reads /run/secrets/pw depends on the image"]);
  });

  it("every container's startup budget covers its workload's start (a Redis node loading its AOF included)", () => {
    assert.deepEqual(podTemplates(h.resources).flatMap((p) => startupBudgetProblems(p, START_NEEDS)), []);
  });

  it("the budget check catches a probe that would kill a start in progress", () => {
    const probe = { startupProbe: { exec: { command: ["true"] }, periodSeconds: 5, failureThreshold: 2 } };
    assert.deepEqual(startupBudgetProblems(pod({ containers: [{ ...container, name: "node", ...probe }] }), { node: 51 }), ["StatefulSet t node: start budget 10 s is shorter than the 51 s it needs to start"]);
    assert.deepEqual(startupBudgetProblems(pod({ containers: [{ ...container, name: "node", ...probe }] }), { node: 10 }), []);
  });

  it('every pod meets Pod Security "restricted"', () => {
    assert.deepEqual(podTemplates(h.resources).flatMap(restrictedProblems), []);
  });

  it("the restricted check catches root, privilege escalation, kept capabilities, no seccomp, host paths", () => {
    assert.deepEqual(restrictedProblems(pod({ containers: [{ name: "c", image: "i", securityContext: { runAsUser: 0 } }], volumes: [{ name: "h", hostPath: { path: "/" } }] })), [
      "StatefulSet t: volume h of type hostPath is not allowed",
      "StatefulSet t: container c: runAsNonRoot is not true",
      "StatefulSet t: container c: runs as root (runAsUser 0)",
      "StatefulSet t: container c: allowPrivilegeEscalation is not false",
      "StatefulSet t: container c: capabilities do not drop ALL",
      "StatefulSet t: container c: no seccomp profile (RuntimeDefault)",
    ]);
  });
});
