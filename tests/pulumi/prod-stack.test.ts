/** Layer 2: the prod stack (Pulumi.prod.yaml) under mocks — the Kubernetes backend for the PostgreSQL pair. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { POSTGRES_PATHS } from "../../components/postgres/PostgresReplicatedPair";
import { renderReplicaBootstrap } from "../../components/postgres/render";
import { fileKey } from "../../components/platform/kubernetes";
import { parseStackOutputs } from "../../runtime/outputs";
import { MockHarness, plainStrings, resolve } from "./harness";

const h = new MockHarness();
let program: typeof import("../../index");
const STS = "kubernetes:apps/v1:StatefulSet";
const SVC = "kubernetes:core/v1:Service";
const NS = "shopfds-prod";

before(async () => {
  program = await h.runProgram("prod");
});

describe("prod stack on Kubernetes", () => {
  it("declares the namespace and, per member set, a StatefulSet, headless Service, ConfigMap, Secret and PodDisruptionBudget", () => {
    const names = (t: string) => h.ofType(t).map((r) => r.name).sort();
    assert.deepEqual(names("kubernetes:core/v1:Namespace"), [NS]);
    assert.deepEqual(names(STS), ["shopfds-prod-pg-primary", "shopfds-prod-pg-replica"]);
    assert.deepEqual(names(SVC), ["shopfds-prod-pg-primary", "shopfds-prod-pg-replica", "shopfds-prod-pg-ro", "shopfds-prod-pg-rw"]);
    assert.deepEqual(names("kubernetes:core/v1:ConfigMap"), ["shopfds-prod-pg-primary-config", "shopfds-prod-pg-replica-config"]);
    assert.deepEqual(names("kubernetes:core/v1:Secret"), ["shopfds-prod-pg-primary-secrets", "shopfds-prod-pg-replica-secrets"]);
    assert.deepEqual(names("kubernetes:policy/v1:PodDisruptionBudget"), ["shopfds-prod-pg-primary", "shopfds-prod-pg-replica"]);
    assert.equal(h.ofType("kubernetes:policy/v1:PodDisruptionBudget").every((p) => p.inputs.spec.maxUnavailable === 1), true);
    assert.equal(h.resources.filter((r) => r.type.startsWith("docker:")).length, 0);
  });

  it("runs one primary and two replicas with probes, requests/limits, non-root user and claim templates", () => {
    const primary = h.named(STS, "shopfds-prod-pg-primary").inputs;
    const replica = h.named(STS, "shopfds-prod-pg-replica").inputs;
    assert.equal(primary.spec.replicas, 1);
    assert.equal(replica.spec.replicas, 2);
    for (const sts of [primary, replica]) {
      assert.equal(sts.metadata.namespace, NS);
      const pod = sts.spec.template.spec;
      const c = pod.containers[0];
      assert.deepEqual(c.args, ["postgres", "-c", "config_file=/etc/postgresql/postgresql.conf"]);
      assert.deepEqual(c.ports, [{ name: "postgres", containerPort: 5432 }]);
      assert.deepEqual(c.resources, { requests: { cpu: "2", memory: "8Gi" }, limits: { cpu: "4", memory: "8Gi" } });
      assert.deepEqual(c.readinessProbe, { exec: { command: ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"] }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 6 });
      assert.equal(c.livenessProbe.failureThreshold, 12);
      assert.equal(c.startupProbe.failureThreshold, 12);
      assert.deepEqual(pod.securityContext, { runAsUser: 999, runAsGroup: 999, fsGroup: 999, runAsNonRoot: true });
      assert.deepEqual(sts.spec.volumeClaimTemplates.map((v: any) => [v.metadata.name, v.spec.resources.requests.storage, v.spec.accessModes]), [["data", "100Gi", ["ReadWriteOnce"]]]);
      assert.ok(c.volumeMounts.some((m: any) => m.name === "data" && m.mountPath === "/var/lib/postgresql/data"));
      assert.ok(c.volumeMounts.some((m: any) => m.mountPath === POSTGRES_PATHS.config && m.subPath === fileKey(POSTGRES_PATHS.config) && m.readOnly));
    }
    assert.equal(primary.spec.template.spec.containers[0].command, undefined);
    assert.deepEqual(replica.spec.template.spec.containers[0].command, ["/bin/sh", "/etc/postgresql/replica-bootstrap.sh"]);
  });

  it("serves writes through a read-write Service on the primary and reads through a read-only Service over the replicas", () => {
    const rw = h.named(SVC, "shopfds-prod-pg-rw").inputs.spec;
    const ro = h.named(SVC, "shopfds-prod-pg-ro").inputs.spec;
    assert.deepEqual(rw.selector, { "app.kubernetes.io/name": "shopfds-prod-pg-primary" });
    assert.deepEqual(ro.selector, { "app.kubernetes.io/name": "shopfds-prod-pg-replica" });
    assert.equal(h.named(SVC, "shopfds-prod-pg-replica").inputs.spec.clusterIP, "None");
  });

  it("points the replicas' bootstrap at the primary pod's stable DNS name", () => {
    const data = h.named("kubernetes:core/v1:ConfigMap", "shopfds-prod-pg-replica-config").inputs.data;
    assert.equal(
      data[fileKey(POSTGRES_PATHS.replicaBootstrap)],
      renderReplicaBootstrap({
        primaryHost: `shopfds-prod-pg-primary-0.shopfds-prod-pg-primary.${NS}.svc.cluster.local`,
        primaryPort: 5432,
        replicationUser: "replicator",
        replicationPasswordFile: POSTGRES_PATHS.replicationPassword,
        waitForPrimarySeconds: 300,
      }),
    );
    assert.match(data[fileKey(POSTGRES_PATHS.config)], /^max_wal_senders = 6$/m);
  });

  it("keeps passwords in Secrets only, never in a ConfigMap or plain input, and secret in the outputs", async () => {
    assert.deepEqual(h.leaks(), []);
    for (const s of h.ofType("kubernetes:core/v1:Secret")) assert.deepEqual(plainStrings(s.rawInputs.stringData), [], `${s.name}: stringData is secret`);
    assert.deepEqual(Object.keys(h.named("kubernetes:core/v1:Secret", "shopfds-prod-pg-replica-secrets").inputs.stringData), [fileKey(POSTGRES_PATHS.replicationPassword)]);
    assert.equal((await resolve(program.postgres.password)).secret, true);
  });

  it("exports cluster DNS endpoints in the outputs contract's shape", async () => {
    const { password, ...plain } = parseStackOutputs({ postgres: (await resolve(program.postgres)).value }).postgres;
    assert.deepEqual(plain, {
      primary: { host: `shopfds-prod-pg-rw.${NS}.svc.cluster.local`, port: 5432 },
      replicas: [0, 1].map((i) => ({ host: `shopfds-prod-pg-replica-${i}.shopfds-prod-pg-replica.${NS}.svc.cluster.local`, port: 5432 })),
      database: "shopfds",
      user: "shopfds",
    });
    assert.ok(password.length >= 32);
  });
});
