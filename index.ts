/**
 * The ShopFDS stack. Reads the stack configuration once (components/config.ts), picks the platform,
 * asks each concern (components/<concern>/index.ts) for its part on that platform, and exports the
 * stack outputs in the shape of the runtime's contract (components/outputs.ts), which the services read.
 */
import * as pulumi from "@pulumi/pulumi";
import { cidrWithin, dockerStackSchema, kubernetesStackSchema, missingSecretsError, parseStackConfig, PROJECT, requiredSecrets } from "./components/config";
import { DockerPlatform } from "./components/platform/docker";
import { KubernetesPlatform } from "./components/platform/kubernetes";
import { Platform } from "./components/platform/types";
import { ClusterOperators, OPERATORS } from "./components/platform/operators";
import { NetworkPolicies } from "./components/platform/network-policies";
import { InternalCa } from "./components/platform/internal-ca";
import { declareDatabase } from "./components/postgres";
import { REDIS_BUS_PORT, REDIS_PORT, RedisCluster } from "./components/redis/RedisCluster";
import { declareBroker } from "./components/rabbitmq";
import { JobRunners } from "./components/jobs/JobRunners";
import { declareMonitoring, type MonitoringStack } from "./components/monitoring";
import { SlackSink } from "./components/monitoring/SlackSink";
import { prometheusStackValues } from "./components/monitoring/prometheus-stack";
import { declareLogging } from "./components/logging";
import { DEV_MAIL_FROM, MailSink } from "./components/mail/MailSink";
import { ShopSentryProject } from "./components/observability/SentryProject";
import { SERVICE_MAX_BODY_BYTES, SERVICE_PORT, serviceInsideUrl, ShopService } from "./components/service/ShopService";
import { Migrations } from "./components/service/Migrations";
import { releaseOf } from "./components/service/image";
import { ServiceEdge } from "./components/service/edge";
import { contract, contractJson, type ContractParts, type ContractView } from "./components/outputs";
import { IMAGES } from "./components/versions";
import type { ExistingSecretFiles } from "./components/platform/types";
import { createHash } from "node:crypto";
import * as random from "@pulumi/random";
import type { StackOutputs } from "./runtime/outputs";

const config = new pulumi.Config(PROJECT);
// Only the settings the stack file has: each platform's branch of the schema refuses the other's keys.
const defined = (raw: Record<string, unknown>) => Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
// Every setting either platform's schema knows is read, so a new one cannot be left out here and ignored.
const SETTINGS = [...new Set([...Object.keys(dockerStackSchema.shape), ...Object.keys(kubernetesStackSchema.shape)])].filter((k) => k !== "platform");
const settings = parseStackConfig(defined({ platform: config.get("platform"), ...Object.fromEntries(SETTINGS.map((k) => [k, config.getObject(k)])) }));

// Every secret these settings need, checked before anything is declared: one error names them all.
const missingSecrets = missingSecretsError(
  requiredSecrets(settings),
  (key) => {
    const [namespace, name] = key.split(":") as [string, string];
    return new pulumi.Config(namespace).getSecret(name) !== undefined;
  },
  pulumi.getStack(),
);
if (missingSecrets) throw missingSecrets;

const prefix = `shopfds-${pulumi.getStack()}`;
// The settings of the stack's platform (the config is a union on `platform`): one of these is undefined.
const onDocker = settings.platform === "docker" ? settings : undefined;
const onK8s = settings.platform === "kubernetes" ? settings : undefined;
const platform: Platform =
  settings.platform === "kubernetes"
    ? new KubernetesPlatform(prefix, { namespace: settings.kubernetes.namespace, storageClass: settings.kubernetes.storageClass, clusterDomain: settings.kubernetes.clusterDomain, context: settings.kubernetes.context, kubeconfig: settings.kubernetes.kubeconfig, protect: settings.kubernetes.protect })
    : new DockerPlatform(prefix, { subnet: "172.28.0.0/16", host: settings.docker.host });

// Kubernetes stacks stand on the field's operators (components/platform/operators.ts).
const grafanaAdminPassword = settings.monitoring.enabled
  ? new random.RandomPassword(`${prefix}-grafana-admin-password`, { length: 24, special: false }, { additionalSecretOutputs: ["result"] }).result
  : undefined;
const operators =
  platform instanceof KubernetesPlatform && onK8s
    ? new ClusterOperators(`${prefix}-operators`, {
        platform,
        mode: onK8s.kubernetes.operators,
        prometheusStackValues: prometheusStackValues({ storageSize: onK8s.monitoring.storageSize, size: onK8s.monitoring.size, storageClass: onK8s.kubernetes.storageClass, grafanaAdminPassword: pulumi.secret(grafanaAdminPassword!) }),
      })
    : undefined;

const pg = settings.postgres;
const backup = onK8s?.backup?.enabled !== false ? onK8s?.backup : undefined;
const db = declareDatabase(`${prefix}-pg`, {
  platform,
  settings: { image: pg.image, replicas: pg.replicas, database: pg.database, user: pg.user, storageSize: pg.storageSize, maxConnections: pg.maxConnections, sharedBuffers: pg.sharedBuffers, maxSlotWalKeepSize: pg.maxSlotWalKeepSize, resources: pg.resources },
  hostPort: onDocker?.postgres.hostPort,
  ...(backup?.destinationPath
    ? {
        backup: {
          destinationPath: backup.destinationPath,
          endpointUrl: backup.endpointUrl,
          serverName: backup.serverName,
          retention: backup.retention,
          schedule: backup.schedule,
          accessKeyId: config.requireSecret("backupAccessKeyId"),
          secretAccessKey: config.requireSecret("backupSecretAccessKey"),
        },
      }
    : {}),
  ...(onK8s?.postgres.restore ? { restore: onK8s.postgres.restore } : {}),
  dependsOn: operators?.ready.cnpg ?? [],
});

// Kubernetes: the stack's own CA (cert-manager) signs Redis's and RabbitMQ's server certificates; both
// then take TLS only, and every workload verifies them against it (README, "TLS inside the cluster").
const internalCa =
  platform instanceof KubernetesPlatform && operators ? new InternalCa(`${prefix}-ca`, { platform, instance: prefix, certManager: operators.ready.certManager }) : undefined;

const rc = settings.redis;
const cache = new RedisCluster(`${prefix}-redis`, {
  platform,
  image: rc.image,
  maxMemory: rc.maxMemory,
  nodeTimeoutMs: rc.nodeTimeoutMs,
  storageSize: rc.storageSize,
  resources: rc.resources,
  hostPort: onDocker?.redis.hostPort,
  // Every node's announced name: `<pod>.<headless Service>.<namespace>.svc.<domain>`.
  ...(internalCa ? { tls: internalCa.serverCertificate(internalCa, `${prefix}-redis-tls`, internalCa.podNames(`${prefix}-redis-node`)) } : {}),
});

// Card-hash keys 1…N (FR-010, PCI DSS 3.5.1.1). A RandomPassword (secret in the state) hashed to 256
// bits: RandomId would put the key in its resource id, which Pulumi cannot keep secret.
const cardHashKeys = Array.from({ length: settings.fds.cardHashKeyVersion }, (_, i) => {
  const seed = new random.RandomPassword(`${prefix}-fds-card-key-v${i + 1}`, { length: 64, special: false }, { additionalSecretOutputs: ["result"] }).result;
  return { version: i + 1, key: pulumi.secret(seed.apply((s) => createHash("sha256").update(s).digest("hex"))) };
});

const mq = declareBroker(`${prefix}-rabbitmq`, {
  platform,
  image: settings.rabbitmq.image,
  replicas: onK8s?.rabbitmq.replicas,
  storageSize: settings.rabbitmq.storageSize,
  resources: settings.rabbitmq.resources,
  hostPort: onDocker?.rabbitmq.hostPort,
  operator: operators?.ready.rabbitmq ?? [],
  // The operator's client Service `<name>` (what the URL names) and its pods behind `<name>-nodes`.
  ...(internalCa
    ? {
        tls: internalCa.serverCertificate(internalCa, `${prefix}-rabbitmq-tls`, [
          ...internalCa.serviceNames(`${prefix}-rabbitmq`),
          ...internalCa.podNames(`${prefix}-rabbitmq-nodes`),
        ]),
      }
    : {}),
});

// E-mail: the configured relay, or on Docker a Mailpit sink (its UI shows what the tasks sent).
const mailSink = !settings.smtp && settings.platform === "docker" ? new MailSink(`${prefix}-mail`, { platform, image: IMAGES.mailpit }) : undefined;
const smtpPassword = config.getSecret("smtpPassword");
const smtpFor = (view: ContractView): pulumi.Output<NonNullable<StackOutputs["smtp"]>> | undefined => {
  if (settings.smtp) {
    const { host, port, secure, from, user } = settings.smtp;
    return pulumi.output(smtpPassword ?? "").apply((password) => ({ host, port, secure, from, ...(user ? { user } : {}), ...(password ? { password } : {}) }));
  }
  if (!mailSink) return undefined;
  const endpoint = view === "inside" ? mailSink.inside : mailSink.outside;
  return pulumi.output({ ...endpoint, secure: false, from: DEV_MAIL_FROM });
};

const sentryProject = settings.sentry.enabled
  ? new ShopSentryProject(`${prefix}-sentry`, { organization: settings.sentry.organization, team: settings.sentry.team, environment: settings.sentry.environment })
  : undefined;

// On Kubernetes, PostgreSQL takes TLS only: workloads verify it against the operator's CA, mounted
// (that one key) from the Secret CloudNativePG keeps.
const POSTGRES_CA_DIR = "/run/secrets/postgres-ca";
const INTERNAL_CA_DIR = "/run/secrets/internal-ca";
const contractFiles: ExistingSecretFiles[] = [
  ...(db.caSecretName ? [{ secretName: db.caSecretName, keys: ["ca.crt"], directory: POSTGRES_CA_DIR }] : []),
  // Only ca.crt: the CA's Secret also holds its private key.
  ...(internalCa ? [{ secretName: internalCa.caSecretName, keys: ["ca.crt"], directory: INTERNAL_CA_DIR }] : []),
];
const parts: ContractParts = {
  db,
  ...(db.caSecretName ? { postgresCaFile: `${POSTGRES_CA_DIR}/ca.crt` } : {}),
  ...(internalCa ? { internalCaFile: `${INTERNAL_CA_DIR}/ca.crt` } : {}),
  cache,
  broker: mq,
  cardHashKeys: pulumi.all(cardHashKeys.map((k) => pulumi.all([k.version, k.key]).apply(([version, key]) => ({ version, key })))),
  smtp: smtpFor,
  ...(sentryProject ? { sentry: { dsn: sentryProject.dsn, environment: sentryProject.environment } } : {}),
};
// Workloads inside the stack read the same contract, with the addresses they see from inside.
const insideOutputs = contractJson(parts);

const migrations = new Migrations(`${prefix}-migrations`, `${prefix}-migrate`, { platform, image: settings.jobs.image, outputsJson: insideOutputs, contractFiles, database: db.services });
const migrated = migrations.done;

const jobs = new JobRunners(`${prefix}-jobs`, {
  platform,
  image: settings.jobs.image,
  broker: mq,
  outputsJson: pulumi.secret(insideOutputs),
  publicUrl: settings.service.publicUrl ?? serviceInsideUrl(`${prefix}-service`),
  ...(settings.tracing ? { tracing: settings.tracing } : {}),
  workers: settings.jobs.workers,
  flower: { ...settings.jobs.flower, hostPort: onDocker?.jobs.flower.hostPort },
  contractFiles,
  ...(internalCa ? { brokerCaFile: `${INTERNAL_CA_DIR}/ca.crt` } : {}),
  dependsOn: [...db.services, cache.service, migrated],
});

// The reference service: the same image, behind one stable name; Prometheus scrapes every instance.
const service = settings.service.enabled
  ? new ShopService(`${prefix}-service`, {
      platform,
      image: settings.jobs.image,
      outputsJson: pulumi.secret(insideOutputs),
      replicas: settings.service.replicas,
      resources: settings.service.resources,
      environment: settings.sentry.environment,
      ...(settings.tracing ? { tracing: settings.tracing } : {}),
      ...(settings.service.publicUrl ? { publicUrl: settings.service.publicUrl } : {}),
      hostPort: onDocker?.service.hostPort,
      contractFiles,
      dependsOn: [...db.services, cache.service, mq.broker, migrated],
    })
  : undefined;

// Kubernetes: the service on its public host, through the cluster's ingress controller and cert-manager.
const edge =
  service && onK8s?.edge && platform instanceof KubernetesPlatform
    ? new ServiceEdge(`${prefix}-edge`, { platform, publicUrl: onK8s.service.publicUrl!, serviceName: service.service.name, port: SERVICE_PORT, maxBodyBytes: SERVICE_MAX_BODY_BYTES, settings: onK8s.edge, instance: `${prefix}-service`, certManager: operators?.ready.certManager ?? [] })
    : undefined;

const elk = settings.logging.enabled
  ? declareLogging(`${prefix}-logging`, {
      platform,
      stack: prefix,
      storageSize: settings.logging.storageSize,
      resources: settings.logging.resources,
      hostPort: onDocker?.logging.hostPort,
      ...(onK8s
        ? { kubernetes: { nodes: onK8s.logging.nodes, memory: { kibana: onK8s.logging.kibanaMemory, logstash: onK8s.logging.logstashMemory, filebeat: onK8s.logging.filebeatMemory }, operator: operators?.ready.eck ?? [] } }
        : {}),
    })
  : undefined;

// Alerts: Slack through the secret setting slackWebhookUrl (`pulumi config set --secret
// slackWebhookUrl …`); without it, a Docker stack runs a Slack-compatible sink (the service image's
// webhook sink), and a Kubernetes stack refuses to deploy (requiredSecrets).
let monitor: MonitoringStack | undefined;
if (settings.monitoring.enabled) {
  const slackSecret = config.getSecret("slackWebhookUrl");
  if (!slackSecret && settings.platform !== "docker") throw new Error("unreachable: requiredSecrets() asks for slackWebhookUrl on Kubernetes");
  const slackWebhookUrl = slackSecret ?? new SlackSink(`${prefix}-slack-sink`, { platform, image: settings.jobs.image, instance: `${prefix}-monitoring` }).webhookUrl;
  const mail = settings.smtp ?? { ...mailSink!.inside, from: DEV_MAIL_FROM, user: undefined };
  monitor = declareMonitoring(`${prefix}-monitoring`, {
    platform,
    slackWebhookUrl,
    slackChannel: settings.monitoring.slackChannel,
    email: {
      to: settings.monitoring.alertEmail,
      from: mail.from,
      smarthost: `${mail.host}:${mail.port}`,
      requireTls: settings.smtp !== undefined,
      ...(mail.user ? { username: mail.user } : {}),
      ...(settings.smtp && smtpPassword ? { password: smtpPassword } : {}),
    },
    storageSize: settings.monitoring.storageSize,
    hostPort: onDocker?.monitoring.hostPort,
    grafanaAdminPassword: grafanaAdminPassword!,
    db,
    cache,
    ...(internalCa ? { internalCaSecretName: internalCa.caSecretName } : {}),
    broker: mq,
    ...(service ? { service } : {}),
    workers: jobs,
    ...(elk ? { logging: elk } : {}),
    operator: operators?.ready.prometheus ?? [],
  });
}

if (platform instanceof KubernetesPlatform) {
  new NetworkPolicies(`${prefix}-network`, {
    platform,
    operatorNamespaces: [OPERATORS.cnpg.namespace, OPERATORS.eck.namespace, OPERATORS.rabbitmq.namespace],
    monitoringNamespace: OPERATORS.prometheus.namespace,
    ...(elk?.shipping ? { logShipping: elk.shipping } : {}),
    ...(service && onK8s ? { ingress: { namespace: onK8s.kubernetes.ingressNamespace, serviceName: service.service.name, port: SERVICE_PORT, acmeSolver: edge !== undefined } } : {}),
    // The pods' labels are the operators' (CloudNativePG: cnpg.io/cluster; RabbitMQ: app.kubernetes.io/name
    // and component; ECK: its cluster names) and the platform's (Redis).
    egress: {
      dns: onK8s!.egress.dns,
      postgres: { podLabels: { "cnpg.io/cluster": `${prefix}-pg` }, port: 5432 },
      redis: { podLabels: { "app.kubernetes.io/name": `${prefix}-redis-node` }, port: REDIS_PORT, busPort: REDIS_BUS_PORT },
      rabbitmq: { podLabels: { "app.kubernetes.io/name": `${prefix}-rabbitmq`, "app.kubernetes.io/component": "rabbitmq" }, amqpPort: mq.inside.amqpPort, managementPort: mq.inside.managementPort },
      ...(elk?.eck
        ? { elasticsearch: { podLabels: { "elasticsearch.k8s.elastic.co/cluster-name": elk.eck.elasticsearch }, port: 9200, kibanaPodLabels: { "kibana.k8s.elastic.co/name": elk.eck.kibana }, kibanaPort: 5601 } }
        : {}),
      smtp: { peer: onK8s!.egress.smtp, port: onK8s!.smtp.port },
      ...(settings.sentry.enabled ? { sentry: { cidrs: onK8s!.egress.sentry, port: 443 } } : {}),
      ...(onK8s!.egress.otlp ? { otlp: onK8s!.egress.otlp } : {}),
    },
    cidrWithin,
  });
}

// The stack outputs: the contract as services outside the stack see it.
const outside = contract("outside", parts);
export const postgres = outside.postgres;
export const redis = outside.redis;
export const fds = outside.fds;
export const rabbitmq = outside.rabbitmq;
/** Where services send e-mail (part of the contract; secret, as it may hold the relay's password). */
export const smtp = outside.smtp;

/** Prometheus and Alertmanager (undefined when monitoring is off). */
export const monitoring: StackOutputs["monitoring"] = monitor ? { prometheusUrl: monitor.prometheusUrl, alertmanagerUrl: monitor.alertmanagerUrl } : undefined;

/** The ELK stack (undefined when `shopfds:logging.enabled` is off, as in the dev stack by default). */
export const logging: StackOutputs["logging"] = elk ? { logstash: elk.logstash, kibanaUrl: elk.kibanaUrl } : undefined;

/** The stack's Sentry project's DSN (secret) and environment, when `shopfds:sentry.enabled`. */
export const sentry = outside.sentry;

/** Not part of the services' contract: the image the workloads run and its commit (scripts/ci/deploy.ts rolls back to it). */
export const release = releaseOf(settings.jobs.image);

/** Not part of the services' contract: where people reach the reference service (undefined when off). */
export const serviceUrl = edge?.url ?? service?.url;

/** Not part of the services' contract: Grafana (Kubernetes stacks; user admin). */
export const grafana = monitor?.grafanaUrl ? { url: monitor.grafanaUrl, user: "admin", password: pulumi.secret(grafanaAdminPassword!) } : undefined;

/** Not part of the services' contract: where people open Flower (undefined when it is off). */
export const flower = jobs.flower ? { url: jobs.flower.url, user: jobs.flower.user, password: pulumi.secret(jobs.flower.password) } : undefined;
