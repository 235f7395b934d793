/** Layer 2: the prod stack (Pulumi.prod.yaml) under mocks — the Kubernetes backend for the PostgreSQL pair. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { fileKey } from "../../components/platform/kubernetes";
import { REDIS_PATHS } from "../../components/redis/RedisCluster";
import { renderClusterCreateScript, renderNodeStartScript, renderRedisConf } from "../../components/redis/render";
import { JOB_PATHS } from "../../components/jobs/JobRunners";
import { FLOWER_CELERY_CONFIG_MODULE, renderFlowerCeleryConfig } from "../../components/jobs/flower-config";
import { RABBIT_CLUSTER_CONFIG } from "../../components/rabbitmq/kubernetes";
import { validateCustomResource } from "./crd-schema";
import { fileAccessProblems } from "./pod-audit";
import { parseStackOutputs } from "../../runtime/outputs";
import { releaseOf } from "../../components/service/image";
import { contractOutputs, MockHarness, plainStrings, resolve } from "./harness";

const h = new MockHarness();
const allOutputs = () => contractOutputs(program);
let program: typeof import("../../index");
const STS = "kubernetes:apps/v1:StatefulSet";
const SVC = "kubernetes:core/v1:Service";
const DEPLOY = "kubernetes:apps/v1:Deployment";
const HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler";
const NS = "shopfds-prod";
const CERT = "kubernetes:cert-manager.io/v1:Certificate";
const NODE_TLS = { certFile: `${REDIS_PATHS.tls}/tls.crt`, keyFile: `${REDIS_PATHS.tls}/tls.key`, caFile: `${REDIS_PATHS.tls}/ca.crt` };
/** Whether a certificate's DNS name covers `host` as Node.js checks it (a leading `*.` stands for exactly one label). */
const wildcardMatches = (name: string, host: string) => (name.startsWith("*.") ? host.slice(host.indexOf(".") + 1) === name.slice(2) && !host.slice(0, host.indexOf(".")).includes("*") : name === host);

before(async () => {
  program = await h.runProgram("prod");
});

describe("prod stack on Kubernetes", () => {
  it("deploys through one explicit provider on the configured context, into its namespace, nothing on Docker", () => {
    // The stack's namespace, and the log shipper's own (tests/pulumi/prod-logging.test.ts).
    assert.deepEqual(h.ofType("kubernetes:core/v1:Namespace").map((r) => r.name).sort(), [NS, `${NS}-log-shipping`]);
    assert.equal(h.resources.filter((r) => r.type.startsWith("docker:")).length, 0);
    assert.deepEqual(h.ofType("pulumi:providers:kubernetes").map((p) => [p.name, p.inputs.context]), [["shopfds-prod-k8s", "shopfds-prod"]]);
    assert.deepEqual(h.resources.filter((r) => r.type.startsWith("kubernetes:") && !/pulumi:providers:kubernetes::shopfds-prod-k8s::/.test(r.provider ?? "")).map((r) => `${r.type} ${r.name}`), []);
    // Only sets of two or more get a budget: on a single instance one would protect nothing.
    const budgeted = new Set(h.ofType("kubernetes:policy/v1:PodDisruptionBudget").map((p) => p.name));
    assert.deepEqual(h.ofType(STS).filter((s) => (s.inputs.spec.replicas >= 2) !== budgeted.has(s.name)).map((s) => s.name), [], "a budget exactly for the sets of two or more");
  });

  it("keeps passwords in Secrets only, never in a ConfigMap or plain input, and secret in the outputs", async () => {
    assert.deepEqual(h.leaks(), []);
    for (const s of h.ofType("kubernetes:core/v1:Secret")) assert.deepEqual(plainStrings(s.rawInputs.stringData), [], `${s.name}: stringData is secret`);
    assert.equal((await resolve(program.postgres.password)).secret, true);
  });
});

describe("prod stack on Kubernetes: the Redis Cluster", () => {
  const NODE = "shopfds-prod-redis-node";
  const dns = (i: number) => `${NODE}-${i}.${NODE}.${NS}.svc.cluster.local`;

  it("runs 6 nodes in one StatefulSet behind a headless Service, with claims, a PDB and its files split by secrecy", () => {
    const names = (t: string) => h.ofType(t).map((r) => r.name).filter((n) => n.startsWith("shopfds-prod-redis-")).sort();
    assert.deepEqual(names(STS), [NODE]);
    assert.deepEqual(names(SVC), [NODE]);
    assert.deepEqual(names("kubernetes:core/v1:ConfigMap"), ["shopfds-prod-redis-create-config", `${NODE}-config`]);
    assert.deepEqual(names("kubernetes:core/v1:Secret"), ["shopfds-prod-redis-create-secrets", `${NODE}-secrets`]);
    assert.deepEqual(names("kubernetes:policy/v1:PodDisruptionBudget"), [NODE]);
    const sts = h.named(STS, NODE).inputs;
    assert.equal(sts.spec.replicas, 6);
    assert.equal(h.named(SVC, NODE).inputs.spec.clusterIP, "None");
    assert.deepEqual(sts.spec.volumeClaimTemplates[0].spec.resources.requests, { storage: "10Gi" });
  });

  it("spreads the nodes over hosts (anti-affinity), exposes client and bus ports, and announces the pod's DNS name", () => {
    const pod = h.named(STS, NODE).inputs.spec.template.spec;
    assert.deepEqual(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm, {
      topologyKey: "kubernetes.io/hostname",
      labelSelector: { matchLabels: { "app.kubernetes.io/instance": "shopfds-prod-redis" } },
    });
    const c = pod.containers[0];
    assert.deepEqual(c.ports, [{ name: "redis", containerPort: 6379 }, { name: "bus", containerPort: 16379 }]);
    assert.deepEqual(c.command, ["sh", REDIS_PATHS.startScript]);
    assert.equal(h.named("kubernetes:core/v1:ConfigMap", `${NODE}-config`).inputs.data[fileKey(REDIS_PATHS.startScript)], renderNodeStartScript({ configFile: REDIS_PATHS.config, dataDir: REDIS_PATHS.data }));
    assert.deepEqual(c.resources, { requests: { cpu: "500m", memory: "3Gi" }, limits: { cpu: "1", memory: "3Gi" } });
    assert.deepEqual(pod.securityContext, { runAsUser: 999, runAsGroup: 999, fsGroup: 999, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    assert.equal(
      h.named("kubernetes:core/v1:ConfigMap", `${NODE}-config`).inputs.data[fileKey(REDIS_PATHS.config)],
      renderRedisConf({ port: 6379, clusterPort: 16379, nodeTimeoutMs: 3000, dataDir: "/data", maxMemory: "2gb", authIncludeFile: REDIS_PATHS.authInclude, announceHostnames: true, tls: NODE_TLS }),
    );
  });

  it("takes TLS only, with a certificate of the stack's CA naming every node, mounted as the node's files and checked by the health probe", () => {
    const cert = h.named(CERT, "shopfds-prod-redis-tls").inputs;
    assert.deepEqual(validateCustomResource("cert-manager.io/v1", "Certificate", cert), []);
    assert.deepEqual(cert.spec.issuerRef, { group: "cert-manager.io", kind: "Issuer", name: "shopfds-prod-ca-issuer" });
    // Node.js checks a wildcard against one label: every node's announced name must match one.
    for (let i = 0; i < 6; i++) assert.ok(cert.spec.dnsNames.some((n: string) => wildcardMatches(n, dns(i))), `${dns(i)} is named by ${cert.spec.dnsNames.join(", ")}`);
    assert.ok(!cert.spec.dnsNames.some((n: string) => wildcardMatches(n, `other.${NODE}-x.${NS}.svc.cluster.local`)), "and nothing wider");
    const pod = h.named(STS, NODE).inputs.spec.template.spec;
    const volume = pod.volumes.find((v: any) => v.secret?.secretName === "shopfds-prod-redis-tls");
    assert.deepEqual(volume.secret.items.map((i: any) => i.key), ["tls.crt", "tls.key", "ca.crt"]);
    assert.ok(pod.containers[0].volumeMounts.some((m: any) => m.name === volume.name && m.mountPath === REDIS_PATHS.tls));
    assert.match(pod.containers[0].readinessProbe.exec.command.join(" "), /redis-cli --tls --cacert \/run\/secrets\/redis-tls\/ca\.crt -p 6379 ping/);
    assert.ok(h.dependsOn(h.named(STS, NODE), CERT, "shopfds-prod-redis-tls"), "the pods wait for the certificate's Secret");
  });

  it("forms the cluster with a Job over the pods' stable names", () => {
    const job = h.named("kubernetes:batch/v1:Job", "shopfds-prod-redis-create").inputs;
    assert.equal(job.metadata.namespace, NS);
    assert.equal(job.spec.template.spec.restartPolicy, "OnFailure");
    assert.deepEqual(job.spec.template.spec.containers[0].command, ["sh", REDIS_PATHS.createScript]);
    assert.equal(
      h.named("kubernetes:core/v1:ConfigMap", "shopfds-prod-redis-create-config").inputs.data[fileKey(REDIS_PATHS.createScript)],
      renderClusterCreateScript({ nodes: [0, 1, 2, 3, 4, 5].map((i) => ({ host: dns(i), port: 6379 })), replicasPerMaster: 1, passwordFile: REDIS_PATHS.password, waitSeconds: 120, tlsCaFile: NODE_TLS.caFile }),
    );
  });

  it("keeps the password in Secrets only and exports DNS endpoints, no NAT map", async () => {
    assert.deepEqual(h.leaks(), []);
    for (const name of [`${NODE}-secrets`, "shopfds-prod-redis-create-secrets"]) assert.deepEqual(plainStrings(h.named("kubernetes:core/v1:Secret", name).rawInputs.stringData), [], name);
    const { redis } = parseStackOutputs(await allOutputs());
    assert.deepEqual(redis.nodes, [0, 1, 2, 3, 4, 5].map((i) => ({ host: dns(i), port: 6379 })));
    assert.equal(redis.natMap, undefined);
    assert.equal((await resolve(program.redis.password)).secret, true);
  });
});

describe("prod stack on Kubernetes: RabbitMQ, workers, scheduler and Flower", () => {
  it("runs the broker as a RabbitmqCluster of 3 nodes (3.13, required anti-affinity), with the rendered definitions mounted from a Secret", () => {
    const recorded = h.named("kubernetes:rabbitmq.com/v1beta1:RabbitmqCluster", "shopfds-prod-rabbitmq");
    const rmq = recorded.inputs;
    assert.deepEqual(validateCustomResource("rabbitmq.com/v1beta1", "RabbitmqCluster", rmq), []);
    assert.equal(recorded.protect, true);
    assert.deepEqual([rmq.spec.replicas, rmq.spec.image, rmq.spec.persistence.storage], [3, "rabbitmq:3.13.7-management", "8Gi"]);
    assert.equal(rmq.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey, "kubernetes.io/hostname");
    assert.equal(rmq.spec.rabbitmq.additionalConfig, RABBIT_CLUSTER_CONFIG);
    assert.match(RABBIT_CLUSTER_CONFIG, /^load_definitions = \/etc\/shopfds-definitions\/definitions\.json$/m);
    const pod = rmq.spec.override.statefulSet.spec.template.spec;
    assert.deepEqual(pod.volumes, [{ name: "shopfds-definitions", secret: { secretName: "shopfds-prod-rabbitmq-definitions", defaultMode: 0o440 } }]);
    // The operator runs RabbitMQ as 999 with fsGroup 0 (its defaults): the kubelet makes the file root:0 0440, readable.
    assert.deepEqual(fileAccessProblems({ owner: "RabbitmqCluster", spec: { securityContext: { runAsUser: 999, runAsGroup: 999, fsGroup: 0 }, containers: [{ ...pod.containers[0] }], volumes: pod.volumes } }), []);
    const secret = h.named("kubernetes:core/v1:Secret", "shopfds-prod-rabbitmq-definitions");
    assert.deepEqual(plainStrings(secret.rawInputs.stringData), []);
    const definitions = JSON.parse(secret.inputs.stringData["definitions.json"]);
    assert.ok(definitions.users.every((u: { name: string }) => u.name !== "guest"));
    assert.deepEqual(definitions.queues.map((q: { name: string }) => q.name), ["celery", "shopfds.email", "shopfds.dead"]);
  });

  it("runs ≥ 2 workers of concurrency ≥ 4 (a Deployment autoscaled from 2 to 6), exactly one scheduler, and Flower with basic auth", () => {
    const workers = h.named(DEPLOY, "shopfds-prod-jobs-worker").inputs;
    assert.equal(workers.spec.replicas, undefined, "the autoscaler owns the count");
    assert.deepEqual(h.named(HPA, "shopfds-prod-jobs-worker").inputs.spec, {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "shopfds-prod-jobs-worker" },
      minReplicas: 2,
      maxReplicas: 6,
      metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } } }],
    });
    assert.deepEqual(workers.spec.template.spec.containers[0].args.slice(1, 4), ["service/dist/bin/worker.js", "--concurrency", "4"]);
    assert.equal(h.named(STS, "shopfds-prod-jobs-scheduler").inputs.spec.replicas, 1);
    const flower = h.named(DEPLOY, "shopfds-prod-jobs-flower").inputs.spec.template.spec.containers[0];
    assert.match(flower.command[2], /--basic_auth="\$\(cat \/run\/secrets\/flower-basic-auth\)"/);
    assert.deepEqual(plainStrings(h.named("kubernetes:core/v1:Secret", "shopfds-prod-jobs-flower-secrets").rawInputs.stringData), []);
    assert.equal((program.flower as { url: string }).url, `http://shopfds-prod-jobs-flower-ui.${NS}.svc.cluster.local:5555/`, "Flower through its Service");
    const outputs = parseStackOutputs(JSON.parse(h.named("kubernetes:core/v1:Secret", "shopfds-prod-jobs-worker-secrets").inputs.stringData[fileKey(JOB_PATHS.outputs)]));
    assert.equal(outputs.redis.nodes[0]!.host, `shopfds-prod-redis-node-0.shopfds-prod-redis-node.${NS}.svc.cluster.local`);
  });

  it("gives workers the configured SMTP relay (no sink in production)", () => {
    const inside = parseStackOutputs(JSON.parse(h.named("kubernetes:core/v1:Secret", "shopfds-prod-jobs-worker-secrets").inputs.stringData[fileKey(JOB_PATHS.outputs)]));
    assert.deepEqual(inside.smtp, { host: "email-smtp.ap-northeast-2.amazonaws.com", port: 587, secure: false, from: "ShopFDS <no-reply@shopfds.example>", user: "shopfds-ses", password: "prod-smtp-secret-password" });
    assert.equal(h.resources.filter((r) => r.name.includes("-mail")).length, 0);
  });

  it("exports the broker through its in-cluster name", async () => {
    const { rabbitmq } = parseStackOutputs(await allOutputs());
    assert.match(rabbitmq.url, new RegExp(`^amqps://shopfds:[A-Za-z0-9]{32,}@shopfds-prod-rabbitmq\\.${NS}\\.svc:5671/shopfds$`), "the operator's client Service, AMQPS");
    assert.equal(rabbitmq.managementUrl, `https://shopfds-prod-rabbitmq.${NS}.svc:15671/`);
    assert.deepEqual(h.leaks(), []);
  });

  it("takes TLS only (the operator's spec.tls, non-TLS listeners off) with a certificate of the stack's CA naming the client Service", () => {
    const rmq = h.named("kubernetes:rabbitmq.com/v1beta1:RabbitmqCluster", "shopfds-prod-rabbitmq");
    assert.deepEqual(rmq.inputs.spec.tls, { secretName: "shopfds-prod-rabbitmq-tls", disableNonTLSListeners: true });
    assert.ok(h.dependsOn(rmq, CERT, "shopfds-prod-rabbitmq-tls"), "the operator does not reconcile until the Secret exists");
    const cert = h.named(CERT, "shopfds-prod-rabbitmq-tls").inputs;
    assert.deepEqual(validateCustomResource("cert-manager.io/v1", "Certificate", cert), []);
    assert.ok(cert.spec.dnsNames.includes(`shopfds-prod-rabbitmq.${NS}.svc`), "the URL's host");
    assert.equal(cert.spec.secretName, "shopfds-prod-rabbitmq-tls");
  });

  it("gives every workload the contract's tls for Redis and RabbitMQ, with only ca.crt of the stack's CA mounted", () => {
    for (const [type, name] of [[DEPLOY, "shopfds-prod-jobs-worker"], [STS, "shopfds-prod-jobs-scheduler"], [DEPLOY, "shopfds-prod-service"]] as const) {
      const inside = parseStackOutputs(JSON.parse(h.named("kubernetes:core/v1:Secret", `${name}-secrets`).inputs.stringData[fileKey(JOB_PATHS.outputs)]));
      assert.deepEqual(inside.redis.tls, { caFile: "/run/secrets/internal-ca/ca.crt" }, name);
      assert.deepEqual(inside.rabbitmq.tls, { caFile: "/run/secrets/internal-ca/ca.crt" }, name);
      assert.match(inside.rabbitmq.url, /^amqps:\/\/.*:5671\//);
      const pod = h.named(type, name).inputs.spec.template.spec;
      const volume = pod.volumes.find((v: any) => v.secret?.secretName === "shopfds-prod-ca");
      assert.deepEqual(volume?.secret.items, [{ key: "ca.crt", path: "ca.crt" }], `${name}: the CA's certificate only, never its key`);
      assert.ok(pod.containers[0].volumeMounts.some((m: any) => m.name === volume.name && m.mountPath === "/run/secrets/internal-ca"), name);
    }
    const ca = h.named(CERT, "shopfds-prod-ca").inputs.spec;
    assert.equal(ca.isCA, true);
    assert.deepEqual(h.named("kubernetes:cert-manager.io/v1:Issuer", "shopfds-prod-ca-issuer").inputs.spec, { ca: { secretName: "shopfds-prod-ca" } });
  });

  it("points Flower at AMQPS through a Celery configuration module that verifies the broker against the stack's CA", () => {
    const flower = h.named(DEPLOY, "shopfds-prod-jobs-flower").inputs.spec.template.spec;
    const c = flower.containers[0];
    assert.match(c.command[2], new RegExp(`^exec celery --config=${FLOWER_CELERY_CONFIG_MODULE} --broker=`));
    assert.deepEqual(c.env.find((e: any) => e.name === "PYTHONPATH"), { name: "PYTHONPATH", value: JOB_PATHS.flowerConfigDir });
    const config = h.named("kubernetes:core/v1:ConfigMap", "shopfds-prod-jobs-flower-config").inputs.data[fileKey(`${JOB_PATHS.flowerConfigDir}/${FLOWER_CELERY_CONFIG_MODULE}.py`)];
    assert.equal(config, renderFlowerCeleryConfig({ caFile: "/run/secrets/internal-ca/ca.crt", serverName: `shopfds-prod-rabbitmq.${NS}.svc` }));
    const secrets = h.named("kubernetes:core/v1:Secret", "shopfds-prod-jobs-flower-secrets").inputs.stringData;
    assert.match(secrets[fileKey(JOB_PATHS.flowerBroker)], new RegExp(`^amqps://flower:[^@]+@shopfds-prod-rabbitmq\\.${NS}\\.svc:5671/shopfds$`));
    assert.match(secrets[fileKey(JOB_PATHS.flowerBrokerApi)], new RegExp(`^https://flower:[^@]+@shopfds-prod-rabbitmq\\.${NS}\\.svc:15671/api/$`));
  });
});

describe("prod stack: Sentry (FR-024)", () => {
  it("declares the production Sentry project and a key, and exports the DSN as a secret", async () => {
    const project = h.named("sentry:index/sentryProject:SentryProject", "shopfds-prod-sentry-project").inputs;
    assert.deepEqual([project.organization, project.slug, project.teams, project.platform], ["shopfds", "shopfds-production", ["platform"], "node"]);
    assert.equal(h.named("sentry:index/sentryKey:SentryKey", "shopfds-prod-sentry-key").inputs.project, "shopfds-production");
    const dsn = await resolve(program.sentry!.dsn);
    assert.equal(dsn.secret, true);
    const { sentry } = parseStackOutputs({ ...(await allOutputs()), sentry: { dsn: dsn.value, environment: program.sentry!.environment } });
    assert.deepEqual(sentry, { dsn: "https://mockshopfdsprodsentrykey@o0.ingest.sentry.io/4500000", environment: "production" });
  });
});

describe("prod stack on Kubernetes: migrations", () => {
  it("runs the migrations as a Job of the service image, its outputs in a Secret", () => {
    const job = h.named("kubernetes:batch/v1:Job", "shopfds-prod-migrate").inputs;
    assert.deepEqual(job.spec.template.spec.containers[0].command, ["node", "service/dist/bin/migrate.js", "up"]);
    assert.equal(job.metadata.namespace, NS);
    assert.deepEqual(plainStrings(h.named("kubernetes:core/v1:Secret", "shopfds-prod-migrate-secrets").rawInputs.stringData), []);
  });

  it("runs them inside the cluster after the PostgreSQL cluster exists and before any workload that uses the schema", () => {
    const job = h.named("kubernetes:batch/v1:Job", "shopfds-prod-migrate");
    assert.ok(h.dependsOn(job, "kubernetes:postgresql.cnpg.io/v1:Cluster", "shopfds-prod-pg"), "after the Cluster");
    assert.equal(job.createTimeout, "30m", "Pulumi waits for it longer than a new cluster takes to answer");
    for (const [type, name] of [[DEPLOY, "shopfds-prod-service"], [DEPLOY, "shopfds-prod-jobs-worker"], [STS, "shopfds-prod-jobs-scheduler"]] as const) {
      assert.ok(h.dependsOn(h.named(type, name), "kubernetes:batch/v1:Job", "shopfds-prod-migrate"), `${name} waits for the migrations`);
    }
    assert.equal(h.dependsOn(h.named(DEPLOY, "shopfds-prod-service"), "kubernetes:batch/v1:Job", "shopfds-prod-redis-create"), true, "and for the Redis cluster");
  });
});

describe("prod stack on Kubernetes: the reference service", () => {
  it("runs 2 to 6 service pods (a Deployment and its autoscaler) behind a ClusterIP Service, with probes on /health/live and the outputs in a Secret", async () => {
    const sts = h.named(DEPLOY, "shopfds-prod-service").inputs;
    assert.equal(h.named(HPA, "shopfds-prod-service").inputs.spec.minReplicas, 2);
    assert.equal(h.named(HPA, "shopfds-prod-service").inputs.spec.maxReplicas, 6);
    assert.deepEqual(sts.spec.strategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const c = sts.spec.template.spec.containers[0];
    assert.deepEqual(c.args, ["node", "service/dist/bin/service.js", "--port", "8080"]);
    assert.match(JSON.stringify(c.livenessProbe ?? c.readinessProbe), /health\/live/);
    const env = Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    assert.deepEqual([env.SHOPFDS_ENVIRONMENT, env.SHOPFDS_PUBLIC_URL], ["production", "https://shop.shopfds.example"]);
    assert.deepEqual(Object.keys(env).filter((k) => k.startsWith("OTEL_")), [], "no collector configured: tracing off");
    const svc = h.named(SVC, "shopfds-prod-service-http").inputs.spec;
    assert.equal(svc.type, "ClusterIP");
    assert.deepEqual(svc.ports.map((p: { port: number }) => p.port), [8080]);
    const inside = parseStackOutputs(JSON.parse(h.named("kubernetes:core/v1:Secret", "shopfds-prod-service-secrets").inputs.stringData[fileKey(JOB_PATHS.outputs)]));
    assert.ok(inside.sentry?.dsn, "the service gets the production Sentry DSN");
    assert.deepEqual(plainStrings(h.named("kubernetes:core/v1:Secret", "shopfds-prod-service-secrets").rawInputs.stringData), []);
    assert.ok(h.named(DEPLOY, "shopfds-prod-jobs-worker").inputs.spec.template.spec.containers[0].env.some((e: { name: string; value: string }) => e.name === "SHOPFDS_PUBLIC_URL" && e.value === "https://shop.shopfds.example"));
    assert.deepEqual(await resolve(program.serviceUrl), { value: "https://shop.shopfds.example", secret: false });
  });

  it("exports the release it runs (the image, and the commit its tag names), which a failed deploy rolls back to", async () => {
    // Pulumi.prod.yaml names no image: the default tag is no commit.
    assert.deepEqual((await resolve(program.release)).value, { image: "ghcr.io/shopfds/shopfds-service:latest" });
    const sha = "0123456789abcdef0123456789abcdef01234567";
    assert.deepEqual(releaseOf(`ghcr.io/shopfds/shopfds-service:${sha}`), { image: `ghcr.io/shopfds/shopfds-service:${sha}`, commit: sha });
    assert.deepEqual(releaseOf("ghcr.io/shopfds/shopfds-service:0123456"), { image: "ghcr.io/shopfds/shopfds-service:0123456" }, "a short tag is no commit to check out");
  });
});
