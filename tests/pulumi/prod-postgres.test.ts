/**
 * Layer 2: PostgreSQL in the prod stack is a CloudNativePG Cluster (primary + 2 replicas, failover by
 * the operator) with WAL archiving and a daily ScheduledBackup to S3, TLS-only pg_hba, a PodMonitor and
 * required anti-affinity; the outputs contract is filled from its -rw/-ro Services and the credentials
 * Secret the program gives initdb. Both custom resources are judged against the operator's CRD.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { OPERATORS } from "../../components/platform/operators";
import { JOB_PATHS } from "../../components/jobs/JobRunners";
import { fileKey } from "../../components/platform/kubernetes";
import { parseStackOutputs } from "../../runtime/outputs";
import { validateCustomResource } from "./crd-schema";
import { contractOutputs, MockHarness, plainStrings, resolve, TEST_SECRETS } from "./harness";

const h = new MockHarness();
let program: typeof import("../../index");
const NS = "shopfds-prod";
const CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster";
const SECRET = "kubernetes:core/v1:Secret";

before(async () => {
  program = await h.runProgram("prod");
});

describe("prod stack: PostgreSQL on CloudNativePG", () => {
  it("installs the operator from its chart at the pinned version, in its own namespace", () => {
    const release = h.named("kubernetes:helm.sh/v3:Release", "shopfds-prod-operators-cloudnative-pg").inputs;
    assert.deepEqual(
      { chart: release.chart, version: release.version, repo: release.repositoryOpts.repo, namespace: release.namespace, atomic: release.atomic },
      { chart: "cloudnative-pg", version: OPERATORS.cnpg.version, repo: "https://cloudnative-pg.github.io/charts", namespace: "cnpg-system", atomic: true },
    );
  });

  it("declares one Cluster of a primary and two replicas with the stack's settings, TLS-only access, anti-affinity and a PodMonitor", () => {
    const recorded = h.named(CLUSTER, "shopfds-prod-pg");
    const cluster = recorded.inputs;
    assert.deepEqual(validateCustomResource("postgresql.cnpg.io/v1", "Cluster", cluster), []);
    assert.equal(recorded.protect, true, "the data is protected from a `pulumi destroy`");
    assert.ok(h.dependsOn(recorded, "kubernetes:helm.sh/v3:Release", "shopfds-prod-operators-cloudnative-pg"), "after its operator");
    const spec = cluster.spec;
    assert.equal(cluster.metadata.namespace, NS);
    assert.equal(spec.instances, 3);
    assert.equal(spec.imageName, "ghcr.io/cloudnative-pg/postgresql:15.13-system-bookworm");
    assert.deepEqual(spec.postgresql.parameters, { max_connections: "400", shared_buffers: "2GB", max_slot_wal_keep_size: "20GB", log_min_duration_statement: "1000" });
    assert.deepEqual(spec.postgresql.pg_hba, ["hostnossl all all 0.0.0.0/0 reject", "hostnossl all all ::/0 reject"]);
    assert.deepEqual(spec.storage, { size: "100Gi" });
    assert.deepEqual(spec.resources, { requests: { cpu: "2", memory: "8Gi" }, limits: { memory: "8Gi" } });
    assert.deepEqual(spec.affinity, { enablePodAntiAffinity: true, podAntiAffinityType: "required", topologyKey: "kubernetes.io/hostname" });
    assert.deepEqual(spec.monitoring, { enablePodMonitor: true });
    assert.equal(spec.enableSuperuserAccess, false);
    assert.deepEqual(spec.bootstrap, { initdb: { database: "shopfds", owner: "shopfds", secret: { name: "shopfds-prod-pg-app-credentials" }, dataChecksums: true } });
  });

  it("archives WAL and keeps base backups 30 days in the stack's bucket, with keys from a Secret; a ScheduledBackup runs daily", () => {
    const { backup } = h.named(CLUSTER, "shopfds-prod-pg").inputs.spec;
    assert.deepEqual(backup, {
      retentionPolicy: "30d",
      barmanObjectStore: {
        destinationPath: "s3://shopfds-backups/prod",
        serverName: "shopfds-prod-pg",
        s3Credentials: {
          accessKeyId: { name: "shopfds-prod-pg-backup-credentials", key: "ACCESS_KEY_ID" },
          secretAccessKey: { name: "shopfds-prod-pg-backup-credentials", key: "ACCESS_SECRET_KEY" },
        },
        wal: { compression: "gzip", maxParallel: 2 },
        data: { compression: "gzip" },
      },
    });
    const keys = h.named(SECRET, "shopfds-prod-pg-backup-credentials");
    assert.deepEqual(keys.inputs.stringData, { ACCESS_KEY_ID: TEST_SECRETS.prod!["shopfds:backupAccessKeyId"], ACCESS_SECRET_KEY: TEST_SECRETS.prod!["shopfds:backupSecretAccessKey"] });
    assert.deepEqual(plainStrings(keys.rawInputs.stringData), [], "the keys stay secret");
    const scheduled = h.named("kubernetes:postgresql.cnpg.io/v1:ScheduledBackup", "shopfds-prod-pg-daily").inputs;
    assert.deepEqual(validateCustomResource("postgresql.cnpg.io/v1", "ScheduledBackup", scheduled), []);
    assert.deepEqual(scheduled.spec, { schedule: "0 0 3 * * *", cluster: { name: "shopfds-prod-pg" }, method: "barmanObjectStore", backupOwnerReference: "self", immediate: true });
  });

  it("fills the outputs contract from the -rw and -ro Services and the credentials initdb was given", async () => {
    const pg = parseStackOutputs(await contractOutputs(program)).postgres;
    const credentials = h.named(SECRET, "shopfds-prod-pg-app-credentials").inputs;
    assert.equal(credentials.type, "kubernetes.io/basic-auth");
    assert.deepEqual(credentials.stringData, { username: "shopfds", password: pg.password });
    assert.deepEqual({ ...pg, password: undefined }, {
      primary: { host: `shopfds-prod-pg-rw.${NS}.svc`, port: 5432 },
      replicas: [{ host: `shopfds-prod-pg-ro.${NS}.svc`, port: 5432 }],
      replicaDiscovery: { host: `shopfds-prod-pg-replicas.${NS}.svc.cluster.local`, port: 5432, serverName: `shopfds-prod-pg-ro.${NS}.svc` },
      database: "shopfds",
      user: "shopfds",
      password: undefined,
    });
    assert.ok(pg.password.length >= 32);
    assert.equal((await resolve(program.postgres.password)).secret, true);
  });

  it("lists every ready replica pod under one name of its own (a headless Service over the operator's replica labels), for the router to read and measure each replica on its own", async () => {
    const svc = h.named("kubernetes:core/v1:Service", "shopfds-prod-pg-replicas");
    assert.equal(svc.inputs.metadata.namespace, NS);
    assert.equal(svc.inputs.spec.clusterIP, "None", "headless: DNS answers with every pod's address, not one virtual IP");
    assert.equal(svc.inputs.spec.publishNotReadyAddresses, false, "a replica not ready is not offered");
    // The labels CloudNativePG's own -ro Service selects (tests/fixtures/upstream, cloudnative-pg v1.30.0).
    assert.deepEqual(svc.inputs.spec.selector, { "cnpg.io/cluster": "shopfds-prod-pg", "cnpg.io/instanceRole": "replica" });
    assert.deepEqual(svc.inputs.spec.ports, [{ name: "postgres", port: 5432, targetPort: 5432, protocol: "TCP" }]);
    assert.ok(h.dependsOn(svc, CLUSTER, "shopfds-prod-pg"), "after the Cluster");
    const inside = JSON.parse(h.named(SECRET, "shopfds-prod-service-secrets").inputs.stringData[fileKey(JOB_PATHS.outputs)]);
    assert.deepEqual(parseStackOutputs(inside).postgres.replicaDiscovery, { host: `shopfds-prod-pg-replicas.${NS}.svc.cluster.local`, port: 5432, serverName: `shopfds-prod-pg-ro.${NS}.svc` });
  });

  it("workloads inside the cluster connect with TLS, verifying against CloudNativePG's CA (its certificate only, never its key)", () => {
    const workloads = ["kubernetes:batch/v1:Job shopfds-prod-migrate", "kubernetes:apps/v1:Deployment shopfds-prod-jobs-worker", "kubernetes:apps/v1:StatefulSet shopfds-prod-jobs-scheduler", "kubernetes:apps/v1:Deployment shopfds-prod-service"];
    for (const w of workloads) {
      const [type, name] = w.split(" ") as [string, string];
      const pod = h.named(type, name).inputs.spec.template.spec;
      const volume = pod.volumes.find((v: any) => v.secret?.secretName === "shopfds-prod-pg-ca");
      assert.deepEqual(volume?.secret, { secretName: "shopfds-prod-pg-ca", defaultMode: 0o440, items: [{ key: "ca.crt", path: "ca.crt" }] }, w);
      assert.ok(pod.containers[0].volumeMounts.some((m: any) => m.name === volume.name && m.mountPath === "/run/secrets/postgres-ca" && m.subPath === undefined), `${w}: mounted as a directory (a rotated CA arrives)`);
      const outputs = JSON.parse(h.named(SECRET, `${name}-secrets`).inputs.stringData[fileKey(JOB_PATHS.outputs)]);
      assert.deepEqual(parseStackOutputs(outputs).postgres.tls, { caFile: "/run/secrets/postgres-ca/ca.crt" }, w);
    }
  });
});
