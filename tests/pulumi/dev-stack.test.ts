/** Layer 2: the dev stack (Pulumi.dev.yaml) under mocks — the Docker backend for the PostgreSQL pair. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { POSTGRES_PATHS } from "../../components/postgres/docker";
import { renderPgHba, renderPostgresConf, renderReplicaBootstrap } from "../../components/postgres/render";
import { REDIS_PATHS } from "../../components/redis/RedisCluster";
import { renderClusterCreateScript, renderRedisConf } from "../../components/redis/render";
import { JOB_PATHS } from "../../components/jobs/JobRunners";
import { MONITORING_PATHS } from "../../components/monitoring/docker";
import { DASHBOARDS, grafanaDashboard } from "../../components/monitoring/dashboards";
import { parse as parseYaml } from "yaml";
import { RABBIT_PATHS } from "../../components/rabbitmq/docker";
import { renderRabbitConf } from "../../components/rabbitmq/render";
import { parseStackOutputs } from "../../runtime/outputs";
import { contractOutputs, MockHarness, plainStrings, resolve } from "./harness";

const h = new MockHarness();
const allOutputs = () => contractOutputs(program);
let program: typeof import("../../index");
const CONTAINER = "docker:index/container:Container";
const upload = (container: { inputs: Record<string, any> }, file: string): string => {
  const found = (container.inputs.uploads as { file: string; content: string }[]).find((u) => u.file === file);
  assert.ok(found, `no upload ${file}`);
  return found.content;
};

before(async () => {
  program = await h.runProgram("dev");
});

describe("dev stack on Docker", () => {
  it("declares one network, a container and a named volume per member, one pulled image and four passwords (Grafana's admin among them)", () => {
    const count = (t: string) => h.ofType(t).map((r) => r.name).filter((n) => !/^shopfds-dev-(redis|fds|rabbitmq|jobs|mail|monitoring|slack|migrate|service)/.test(n)).sort();
    assert.deepEqual(count("docker:index/network:Network"), ["shopfds-dev-net"]);
    assert.deepEqual(count(CONTAINER), ["shopfds-dev-pg-primary-0", "shopfds-dev-pg-replica-0"]);
    assert.deepEqual(count("docker:index/volume:Volume"), ["shopfds-dev-pg-primary-0-data", "shopfds-dev-pg-replica-0-data"]);
    assert.deepEqual(count("docker:index/remoteImage:RemoteImage"), [
      "shopfds-dev-image-axllent-mailpit-v1-21",
      "shopfds-dev-image-grafana-grafana-12-0-0",
      "shopfds-dev-image-mher-flower-2-0-1",
      "shopfds-dev-image-oliver006-redis-exporter-v1-50-0",
      "shopfds-dev-image-postgres-15-8-bookworm",
      "shopfds-dev-image-prom-alertmanager-v0-25-0",
      "shopfds-dev-image-prom-node-exporter-v1-5-0",
      "shopfds-dev-image-prom-prometheus-v2-42-0",
      "shopfds-dev-image-quay-io-prometheuscommunity-postgres-exporter-v0-12-0",
      "shopfds-dev-image-rabbitmq-3-13-7-management",
      "shopfds-dev-image-redis-7-0-15-bookworm",
      "shopfds-dev-image-shopfds-service-dev",
    ], "one pulled image each, shared by the containers that use it");
    assert.deepEqual(count("random:index/randomPassword:RandomPassword"), [
      "shopfds-dev-grafana-admin-password",
      "shopfds-dev-pg-app-password",
      "shopfds-dev-pg-replication-password",
      "shopfds-dev-pg-superuser-password",
    ]);
    assert.equal(h.named("docker:index/network:Network", "shopfds-dev-net").inputs.ipamConfigs[0].subnet, "172.28.0.0/16");
  });

  it("runs the primary from the rendered config with a health check, restart policy, volume and loopback port", () => {
    const primary = h.named(CONTAINER, "shopfds-dev-pg-primary-0").inputs;
    assert.deepEqual(primary.command, ["postgres", "-c", "config_file=/etc/postgresql/postgresql.conf"]);
    assert.equal(primary.entrypoints, undefined, "the primary keeps the image's entrypoint (initdb + init scripts)");
    assert.deepEqual(primary.ports, [{ internal: 5432, external: 15432, ip: "127.0.0.1" }]);
    assert.deepEqual(primary.volumes, [{ volumeName: "shopfds-dev-pg-primary-0-data", containerPath: "/var/lib/postgresql/data" }]);
    assert.deepEqual(primary.healthcheck, { tests: ["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], interval: "5s", timeout: "3s", retries: 6, startPeriod: "60s" });
    assert.equal(primary.restart, "unless-stopped");
    assert.equal(primary.user, "999:999");
    assert.equal(primary.memory, 512);
    assert.equal(primary.cpus, "0.5", "Docker takes decimal CPUs (twice the 250m request), never millicores");
    assert.equal(primary.wait, true);
    assert.deepEqual(primary.networksAdvanced, [{ name: "shopfds-dev-net", aliases: ["shopfds-dev-pg-rw"] }]);
    assert.ok(primary.envs.includes("POSTGRES_PASSWORD_FILE=/run/secrets/postgres-superuser-password"));
    assert.ok(primary.envs.includes("PGDATA=/var/lib/postgresql/data/pgdata"));
    assert.equal(
      upload(h.named(CONTAINER, "shopfds-dev-pg-primary-0"), POSTGRES_PATHS.config),
      renderPostgresConf({ port: 5432, listenAddresses: "*", clusterName: "shopfds-dev-pg", hbaFile: POSTGRES_PATHS.hba, unixSocketDirectory: "/var/run/postgresql", replicas: 1, maxConnections: 200, sharedBuffers: "128MB", maxSlotWalKeepSize: "1GB" }),
    );
    assert.equal(upload(h.named(CONTAINER, "shopfds-dev-pg-primary-0"), POSTGRES_PATHS.hba), renderPgHba({ clientCidrs: ["172.28.0.0/16"], replicationUser: "replicator" }));
  });

  it("bootstraps the replica from the primary's container name, after the primary, on the next host port", () => {
    const replica = h.named(CONTAINER, "shopfds-dev-pg-replica-0").inputs;
    assert.deepEqual(replica.entrypoints, ["/bin/sh", "/etc/postgresql/replica-bootstrap.sh"]);
    assert.deepEqual(replica.command, ["postgres", "-c", "config_file=/etc/postgresql/postgresql.conf"]);
    assert.equal(replica.hostname, "shopfds-dev-pg-replica-0");
    assert.deepEqual(replica.ports, [{ internal: 5432, external: 15433, ip: "127.0.0.1" }]);
    assert.deepEqual(replica.networksAdvanced, [{ name: "shopfds-dev-net", aliases: ["shopfds-dev-pg-ro"] }]);
    assert.equal(
      upload(h.named(CONTAINER, "shopfds-dev-pg-replica-0"), POSTGRES_PATHS.replicaBootstrap),
      renderReplicaBootstrap({ primaryHost: "shopfds-dev-pg-primary-0", primaryPort: 5432, replicationUser: "replicator", replicationPasswordFile: POSTGRES_PATHS.replicationPassword, waitForPrimarySeconds: 300 }),
    );
    assert.deepEqual(
      (replica.uploads as { file: string }[]).map((u) => u.file).sort(),
      [POSTGRES_PATHS.hba, POSTGRES_PATHS.config, POSTGRES_PATHS.replicaBootstrap, POSTGRES_PATHS.replicationPassword].sort(),
      "a replica holds only the replication password",
    );
  });

  it("keeps every password secret: in uploads, in the stack outputs, nowhere in plain inputs", async () => {
    assert.deepEqual(h.leaks(), []);
    for (const name of ["shopfds-dev-pg-primary-0", "shopfds-dev-pg-replica-0"]) {
      assert.deepEqual(plainStrings(h.named(CONTAINER, name).rawInputs.uploads), [], `${name}: uploads are one secret`);
    }
    const password = await resolve(program.postgres.password);
    assert.equal(password.secret, true);
    assert.equal(password.value, h.generatedPasswords().find((p) => p.includes("apppassword")));
  });

  it("exports the outputs contract: loopback endpoints of the primary and the replica", async () => {
    assert.deepEqual(Object.keys(program).filter((k) => k !== "default").sort(), ["fds", "flower", "grafana", "logging", "monitoring", "postgres", "rabbitmq", "redis", "release", "sentry", "serviceUrl", "smtp"]);
    const outputs = parseStackOutputs(await allOutputs());
    const { password, ...plain } = outputs.postgres;
    assert.deepEqual(plain, { primary: { host: "127.0.0.1", port: 15432 }, replicas: [{ host: "127.0.0.1", port: 15433 }], database: "shopfds", user: "shopfds" });
    assert.match(password, /^mockPasswordshopfdsdevpgapppassword/);
  });
});

describe("dev stack on Docker: the Redis Cluster", () => {
  const nodes = [0, 1, 2, 3, 4, 5].map((i) => `shopfds-dev-redis-node-${i}`);

  it("declares 6 node containers with a volume each, and one creation container", () => {
    assert.deepEqual(h.ofType(CONTAINER).map((r) => r.name).filter((n) => n.startsWith("shopfds-dev-redis-")).sort(), [...nodes, "shopfds-dev-redis-create"].sort());
    assert.deepEqual(h.ofType("docker:index/volume:Volume").map((r) => r.name).filter((n) => n.startsWith("shopfds-dev-redis-")).sort(), nodes.map((n) => `${n}-data`));
  });

  it("runs each node from the rendered redis.conf, announcing its container name, on its own loopback port", () => {
    nodes.forEach((name, i) => {
      const node = h.named(CONTAINER, name).inputs;
      assert.deepEqual(node.entrypoints, ["sh", REDIS_PATHS.startScript]);
      assert.equal(node.hostname, name, "the announced name is the container name");
      assert.deepEqual(node.ports, [{ internal: 6379, external: 16379 + i, ip: "127.0.0.1" }], "the bus port stays inside the network");
      assert.equal(node.user, "999:999");
      assert.equal(node.memory, 256);
      assert.equal(node.restart, "unless-stopped");
      assert.deepEqual(node.healthcheck.tests, ["CMD", "sh", "-c", 'REDISCLI_AUTH="$(cat /run/secrets/redis-password)" redis-cli -p 6379 ping | grep -q PONG']);
      assert.equal(
        upload(h.named(CONTAINER, name), REDIS_PATHS.config),
        renderRedisConf({ port: 6379, clusterPort: 16379, nodeTimeoutMs: 2000, dataDir: "/data", maxMemory: "128mb", authIncludeFile: REDIS_PATHS.authInclude, announceHostnames: true }),
      );
    });
  });

  it("forms the cluster with a one-shot container running the rendered script against the nodes' names", () => {
    const create = h.named(CONTAINER, "shopfds-dev-redis-create").inputs;
    assert.deepEqual(create.entrypoints, ["sh", REDIS_PATHS.createScript]);
    assert.equal(create.restart, "no");
    assert.equal(create.attach, true, "Pulumi waits for it to finish");
    assert.equal(create.mustRun, false);
    assert.equal(
      upload(h.named(CONTAINER, "shopfds-dev-redis-create"), REDIS_PATHS.createScript),
      renderClusterCreateScript({ nodes: nodes.map((host) => ({ host, port: 6379 })), replicasPerMaster: 1, passwordFile: REDIS_PATHS.password, waitSeconds: 120 }),
    );
  });

  it("keeps the Redis password secret and out of every plain input", async () => {
    assert.deepEqual(h.leaks(), []);
    for (const name of [...nodes, "shopfds-dev-redis-create"]) assert.deepEqual(plainStrings(h.named(CONTAINER, name).rawInputs.uploads), [], name);
    const password = await resolve(program.redis.password);
    assert.equal(password.secret, true);
    assert.equal(password.value, h.generatedPasswords().find((p) => p.includes("redispassword")));
  });

  it("exports loopback endpoints and a NAT map from the announced names", async () => {
    const { redis, fds } = parseStackOutputs(await allOutputs());
    assert.deepEqual(redis.nodes, [0, 1, 2, 3, 4, 5].map((i) => ({ host: "127.0.0.1", port: 16379 + i })));
    assert.deepEqual(redis.natMap, Object.fromEntries(nodes.map((n, i) => [`${n}:6379`, { host: "127.0.0.1", port: 16379 + i }])));
    assert.equal(fds.cardHashKeys.length, 1);
    assert.equal(fds.cardHashKeys[0]!.version, 1);
    assert.equal((await resolve(program.fds)).secret, true, "the card-hash keys are secret");
  });
});

describe("dev stack on Docker: RabbitMQ, workers, scheduler and Flower", () => {
  const broker = "shopfds-dev-rabbitmq-broker-0";

  it("runs the broker from the rendered config and plugins, with the definitions as a secret upload", async () => {
    const b = h.named(CONTAINER, broker).inputs;
    assert.deepEqual(b.ports, [
      { internal: 5672, external: 15680, ip: "127.0.0.1" },
      { internal: 15672, external: 15681, ip: "127.0.0.1" },
    ]);
    assert.deepEqual(b.volumes, [{ volumeName: `${broker}-data`, containerPath: "/var/lib/rabbitmq" }]);
    assert.deepEqual(b.healthcheck.tests, ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"]);
    assert.equal(upload(h.named(CONTAINER, broker), RABBIT_PATHS.config), renderRabbitConf({ amqpPort: 5672, managementPort: 15672, prometheusPort: 15692, bindAddress: "0.0.0.0", definitionsFile: RABBIT_PATHS.definitions }));
    assert.equal(upload(h.named(CONTAINER, broker), RABBIT_PATHS.plugins), "[rabbitmq_management,rabbitmq_prometheus].\n");
    assert.deepEqual(plainStrings(h.named(CONTAINER, broker).rawInputs.uploads), [], "uploads are one secret: the definitions hold password hashes");
    const definitions = JSON.parse(upload(h.named(CONTAINER, broker), RABBIT_PATHS.definitions));
    assert.deepEqual(definitions.users.map((u: { name: string; tags: string[] }) => [u.name, u.tags]), [["shopfds", []], ["flower", ["monitoring"]], ["admin", ["administrator"]]], "no guest");
    assert.deepEqual(definitions.queues.map((q: { name: string }) => q.name), ["celery", "shopfds.email", "shopfds.dead"]);
  });

  it("runs 2 workers of concurrency 4 and one scheduler from the service image, reading the outputs from a secret file", () => {
    const names = h.ofType(CONTAINER).map((r) => r.name).filter((n) => n.startsWith("shopfds-dev-jobs-")).sort();
    assert.deepEqual(names, ["shopfds-dev-jobs-flower-0", "shopfds-dev-jobs-scheduler-0", "shopfds-dev-jobs-worker-0", "shopfds-dev-jobs-worker-1"]);
    for (const name of ["shopfds-dev-jobs-worker-0", "shopfds-dev-jobs-worker-1"]) {
      const w = h.named(CONTAINER, name).inputs;
      assert.deepEqual(w.command, ["node", "service/dist/bin/worker.js", "--concurrency", "4", "--alive-file", "/tmp/shopfds-worker.alive"]);
      assert.ok(w.envs.includes(`SHOPFDS_OUTPUTS_FILE=${JOB_PATHS.outputs}`));
      assert.equal(w.user, "1000:1000");
    }
    const outputs = parseStackOutputs(JSON.parse(upload(h.named(CONTAINER, "shopfds-dev-jobs-worker-0"), JOB_PATHS.outputs)));
    assert.deepEqual(outputs.postgres.primary, { host: "shopfds-dev-pg-primary-0", port: 5432 }, "workers reach the servers by their names inside the network");
    assert.match(outputs.rabbitmq.url, /^amqp:\/\/shopfds:[A-Za-z0-9]+@shopfds-dev-rabbitmq-broker-0:5672\/shopfds$/);
    assert.deepEqual(h.named(CONTAINER, "shopfds-dev-jobs-scheduler-0").inputs.command.slice(0, 2), ["node", "service/dist/bin/scheduler.js"]);
  });

  it("runs Flower behind basic auth, with every credential in secret files", async () => {
    const f = h.named(CONTAINER, "shopfds-dev-jobs-flower-0").inputs;
    assert.match(f.entrypoints[2], /--basic_auth="\$\(cat \/run\/secrets\/flower-basic-auth\)"/);
    assert.deepEqual(f.ports, [{ internal: 5555, external: 15555, ip: "127.0.0.1" }]);
    assert.match(upload(h.named(CONTAINER, "shopfds-dev-jobs-flower-0"), JOB_PATHS.flowerAuth), /^admin:[A-Za-z0-9]{24,}$/);
    const flower = await resolve(program.flower);
    assert.equal(flower.value?.url, "http://127.0.0.1:15555/");
    assert.equal((await resolve(program.flower!.password)).secret, true);
  });

  it("runs a Mailpit SMTP sink when no relay is configured, and gives its address to workers and services", async () => {
    const sink = h.named(CONTAINER, "shopfds-dev-mail-0").inputs;
    assert.deepEqual(sink.ports, [{ internal: 1025, external: 11025, ip: "127.0.0.1" }, { internal: 8025, external: 18025, ip: "127.0.0.1" }]);
    const inside = parseStackOutputs(JSON.parse(upload(h.named(CONTAINER, "shopfds-dev-jobs-worker-0"), JOB_PATHS.outputs)));
    assert.deepEqual(inside.smtp, { host: "shopfds-dev-mail-0", port: 1025, secure: false, from: "ShopFDS <no-reply@shopfds.local>" });
    const exported = await resolve(program.smtp);
    assert.deepEqual(exported.value, { host: "127.0.0.1", port: 11025, secure: false, from: "ShopFDS <no-reply@shopfds.local>" });
  });

  it("exports the broker's AMQP URL as a secret and its management URL", async () => {
    const { rabbitmq } = parseStackOutputs(await allOutputs());
    assert.match(rabbitmq.url, /^amqp:\/\/shopfds:[A-Za-z0-9]{32,}@127\.0\.0\.1:15680\/shopfds$/);
    assert.equal(rabbitmq.managementUrl, "http://127.0.0.1:15681/");
    assert.equal((await resolve(program.rabbitmq.url)).secret, true);
    assert.deepEqual(h.leaks(), []);
  });
});

describe("dev stack on Docker: monitoring", () => {
  it("runs Prometheus and Alertmanager on loopback ports, alerting a Slack-compatible sink when no webhook is configured", async () => {
    const prom = h.named(CONTAINER, "shopfds-dev-monitoring-prometheus-0").inputs;
    assert.deepEqual(prom.ports, [{ internal: 9090, external: 19090, ip: "127.0.0.1" }]);
    const am = h.named(CONTAINER, "shopfds-dev-monitoring-alertmanager-0");
    assert.deepEqual(am.inputs.ports, [{ internal: 9093, external: 19091, ip: "127.0.0.1" }]);
    assert.equal(upload(am, MONITORING_PATHS.slackWebhookUrl), "http://shopfds-dev-slack-sink-0:8080/slack");
    assert.deepEqual(plainStrings(am.rawInputs.uploads).filter((s) => s.includes("slack-sink")), [], "the webhook URL is a secret upload");
    assert.match(upload(am, MONITORING_PATHS.alertmanagerConfig), /smarthost: shopfds-dev-mail-0:1025/);
    const exporter = h.named(CONTAINER, "shopfds-dev-monitoring-postgres-exporter-0");
    assert.ok(exporter.inputs.envs.includes(`DATA_SOURCE_PASS_FILE=${MONITORING_PATHS.postgresPassword}`));
    assert.equal(upload(exporter, MONITORING_PATHS.postgresPassword), h.generatedPasswords().find((p) => p.includes("apppassword")));
    assert.deepEqual((await resolve(program.monitoring)).value, { prometheusUrl: "http://127.0.0.1:19090/", alertmanagerUrl: "http://127.0.0.1:19091/" });
    assert.deepEqual(h.leaks(), []);
  });
  it("runs Grafana provisioned from files: Prometheus as the datasource the panels name, the same dashboards as Kubernetes', the password a secret file", async () => {
    const gf = h.named(CONTAINER, "shopfds-dev-monitoring-grafana-0");
    assert.deepEqual(gf.inputs.ports, [{ internal: 3000, external: 19092, ip: "127.0.0.1" }]);
    const [ds] = parseYaml(upload(gf, MONITORING_PATHS.grafanaDatasources)).datasources;
    assert.deepEqual([ds.uid, ds.type, ds.url], ["prometheus", "prometheus", "http://shopfds-dev-monitoring-prometheus-0:9090"]);
    const [provider] = parseYaml(upload(gf, MONITORING_PATHS.grafanaDashboardProvider)).providers;
    assert.equal(provider.options.path, MONITORING_PATHS.grafanaDashboards);
    for (const d of DASHBOARDS) {
      const json = JSON.parse(upload(gf, `${MONITORING_PATHS.grafanaDashboards}/${d.uid}.json`));
      assert.deepEqual(json, grafanaDashboard(d));
      const uids = new Set((json.panels as any[]).flatMap((p) => [p.datasource?.uid, ...(p.targets ?? []).map((t: any) => t.datasource?.uid)]));
      uids.delete(undefined);
      assert.deepEqual([...uids], [ds.uid], `${d.uid}: every query goes to the provisioned datasource`);
    }
    assert.ok(gf.inputs.envs.includes(`GF_SECURITY_ADMIN_PASSWORD__FILE=${MONITORING_PATHS.grafanaAdminPassword}`));
    assert.ok(!gf.inputs.envs.some((e: string) => e.startsWith("GF_SECURITY_ADMIN_PASSWORD=")));
    const out = (await resolve(program.grafana)).value as unknown as { url: string; password: string };
    assert.equal(out.url, "http://127.0.0.1:19092/");
    assert.equal(upload(gf, MONITORING_PATHS.grafanaAdminPassword), out.password);
    assert.deepEqual(plainStrings(gf.rawInputs).filter((s) => s === out.password), [], "the admin password is a secret");
  });
});

describe("dev stack on Docker: the ELK switch", () => {
  it("declares no Elasticsearch, Logstash or Kibana when logging is off (the dev default), and exports no logging", () => {
    assert.deepEqual(h.resources.filter((r) => r.name.includes("-logging-")).map((r) => r.name), []);
    assert.equal(program.logging, undefined);
  });
});

describe("dev stack on Docker: Sentry switch", () => {
  it("declares no Sentry project unless shopfds:sentry.enabled (the dev default), and exports none", () => {
    assert.deepEqual(h.resources.filter((r) => r.type.startsWith("sentry:")).map((r) => r.name), []);
    assert.equal(program.sentry, undefined);
  });
});

describe("dev stack on Docker: migrations", () => {
  it("runs the migrations once, as a one-shot container of the service image reading the outputs", () => {
    const m = h.named(CONTAINER, "shopfds-dev-migrate").inputs;
    assert.deepEqual(m.entrypoints, ["node", "service/dist/bin/migrate.js", "up"]);
    assert.equal(m.attach, true, "Pulumi waits for it, so workloads depending on it start after the schema is in place");
    assert.equal(m.restart, "no");
    assert.ok(m.envs.includes(`SHOPFDS_OUTPUTS_FILE=${JOB_PATHS.outputs}`));
    assert.equal(parseStackOutputs(JSON.parse(upload(h.named(CONTAINER, "shopfds-dev-migrate"), JOB_PATHS.outputs))).postgres.primary.host, "shopfds-dev-pg-primary-0");
  });
});

describe("dev stack on Docker: the reference service", () => {
  it("runs the service image's HTTP service on a loopback port, reading the outputs from a secret file, checked on /health/live", async () => {
    const s = h.named(CONTAINER, "shopfds-dev-service-0").inputs;
    assert.match(s.image, /shopfds-service:dev$/, "the image built from this checkout, as the workers run it");
    assert.deepEqual(s.command, ["node", "service/dist/bin/service.js", "--port", "8080"]);
    assert.deepEqual(s.ports, [{ internal: 8080, external: 18080, ip: "127.0.0.1" }]);
    assert.match(s.healthcheck.tests.join(" "), /\/health\/live/);
    assert.ok(s.envs.includes(`SHOPFDS_OUTPUTS_FILE=${JOB_PATHS.outputs}`) && s.envs.includes("SHOPFDS_ENVIRONMENT=dev"));
    assert.equal(s.user, "1000:1000");
    assert.deepEqual(s.networksAdvanced[0].aliases, ["shopfds-dev-service-http"]);
    const inside = parseStackOutputs(JSON.parse(upload(h.named(CONTAINER, "shopfds-dev-service-0"), JOB_PATHS.outputs)));
    assert.equal(inside.postgres.primary.host, "shopfds-dev-pg-primary-0");
    assert.deepEqual(plainStrings(h.named(CONTAINER, "shopfds-dev-service-0").rawInputs.envs ?? []).filter((e) => /PASSWORD|amqp:\/\//i.test(e)), [], "no secret in the environment");
    // Report links the workers write point at the service's stable name.
    assert.ok(h.named(CONTAINER, "shopfds-dev-jobs-worker-0").inputs.envs.includes("SHOPFDS_PUBLIC_URL=http://shopfds-dev-service-http:8080"));
    assert.deepEqual(await resolve(program.serviceUrl), { value: "http://127.0.0.1:18080", secret: false });
  });
});
