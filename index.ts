/**
 * The ShopFDS stack. Reads the stack configuration once (components/config.ts), picks the platform
 * backend, wires the components, and exports the stack outputs in the shape of the runtime's contract
 * (runtime/outputs.ts), which the services read.
 */
import * as pulumi from "@pulumi/pulumi";
import { missingSecretsError, parseStackConfig, PROJECT, requiredSecrets } from "./components/config";
import { DockerPlatform } from "./components/platform/docker";
import { KubernetesPlatform } from "./components/platform/kubernetes";
import { Platform, SERVICE_IMAGE_USER } from "./components/platform/types";
import { PostgresReplicatedPair } from "./components/postgres/PostgresReplicatedPair";
import { RedisCluster } from "./components/redis/RedisCluster";
import { RabbitMq } from "./components/rabbitmq/RabbitMq";
import { JOB_PATHS, JobRunners } from "./components/jobs/JobRunners";
import type { DeployedService, ExistingSecretFiles } from "./components/platform/types";
import { Monitoring } from "./components/monitoring/Monitoring";
import { Logging } from "./components/logging/Logging";
import { ShopSentryProject } from "./components/observability/SentryProject";
import { SERVICE_PORT, serviceInsideUrl, ShopService } from "./components/service/ShopService";
import { imageCommand } from "./components/service/image";
import { CnpgPostgres } from "./components/k8s/CnpgPostgres";
import { ClusterOperators, OPERATORS } from "./components/k8s/operators";
import { NetworkPolicies } from "./components/k8s/NetworkPolicies";
import { OperatorMonitoring } from "./components/k8s/OperatorMonitoring";
import { EckLogging } from "./components/k8s/EckLogging";
import { RabbitCluster } from "./components/k8s/RabbitCluster";
import { prometheusStackValues } from "./components/k8s/alerting";
import { createHash } from "node:crypto";
import * as random from "@pulumi/random";
import type { StackOutputs } from "./runtime/outputs";

const config = new pulumi.Config(PROJECT);
const settings = parseStackConfig({
  platform: config.get("platform"),
  docker: config.getObject("docker"),
  kubernetes: config.getObject("kubernetes"),
  postgres: config.getObject("postgres"),
  redis: config.getObject("redis"),
  fds: config.getObject("fds"),
  rabbitmq: config.getObject("rabbitmq"),
  jobs: config.getObject("jobs"),
  service: config.getObject("service"),
  smtp: config.getObject("smtp"),
  monitoring: config.getObject("monitoring"),
  logging: config.getObject("logging"),
  sentry: config.getObject("sentry"),
  backup: config.getObject("backup"),
});

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
const platform: Platform =
  settings.platform === "docker"
    ? new DockerPlatform(prefix, { subnet: "172.28.0.0/16", host: settings.docker.host })
    : new KubernetesPlatform(prefix, { namespace: settings.kubernetes!.namespace, storageClass: settings.kubernetes!.storageClass, clusterDomain: settings.kubernetes!.clusterDomain, context: settings.kubernetes!.context, kubeconfig: settings.kubernetes!.kubeconfig, protect: settings.kubernetes!.protect });

// Kubernetes stacks stand on the field's operators (components/k8s/operators.ts).
const grafanaAdminPassword =
  platform instanceof KubernetesPlatform ? new random.RandomPassword(`${prefix}-grafana-admin-password`, { length: 24, special: false }, { additionalSecretOutputs: ["result"] }).result : undefined;
const operators =
  platform instanceof KubernetesPlatform
    ? new ClusterOperators(`${prefix}-operators`, {
        platform,
        mode: settings.kubernetes!.operators,
        prometheusStackValues: prometheusStackValues({ storageSize: settings.monitoring.storageSize, size: settings.monitoring.size, storageClass: settings.kubernetes!.storageClass, grafanaAdminPassword: pulumi.secret(grafanaAdminPassword!) }),
      })
    : undefined;

const pg = settings.postgres;
const pgSettings = {
  image: pg.image,
  replicas: pg.replicas,
  database: pg.database,
  user: pg.user,
  storageSize: pg.storageSize,
  maxConnections: pg.maxConnections,
  sharedBuffers: pg.sharedBuffers,
  maxSlotWalKeepSize: pg.maxSlotWalKeepSize,
  resources: pg.resources,
};
const backup = settings.backup?.enabled !== false ? settings.backup : undefined;
const db =
  platform instanceof KubernetesPlatform
    ? new CnpgPostgres(`${prefix}-pg`, {
        ...pgSettings,
        platform,
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
        ...(pg.restore ? { restore: pg.restore } : {}),
        dependsOn: operators?.ready.cnpg ?? [],
      })
    : new PostgresReplicatedPair(`${prefix}-pg`, { ...pgSettings, platform, hostPort: pg.hostPort });

const rc = settings.redis;
const cache = new RedisCluster(`${prefix}-redis`, {
  platform,
  image: rc.image,
  maxMemory: rc.maxMemory,
  nodeTimeoutMs: rc.nodeTimeoutMs,
  storageSize: rc.storageSize,
  resources: rc.resources,
  hostPort: settings.platform === "docker" ? rc.hostPort : undefined,
});

// Card-hash keys 1…N (FR-010, PCI DSS 3.5.1.1). A RandomPassword (secret in the state) hashed to 256
// bits: RandomId would put the key in its resource id, which Pulumi cannot keep secret.
const cardHashKeys = Array.from({ length: settings.fds.cardHashKeyVersion }, (_, i) => {
  const seed = new random.RandomPassword(`${prefix}-fds-card-key-v${i + 1}`, { length: 64, special: false }, { additionalSecretOutputs: ["result"] }).result;
  return { version: i + 1, key: pulumi.secret(seed.apply((s) => createHash("sha256").update(s).digest("hex"))) };
});

const mq =
  platform instanceof KubernetesPlatform
    ? new RabbitCluster(`${prefix}-rabbitmq`, {
        platform,
        image: settings.rabbitmq.image,
        replicas: settings.rabbitmq.replicas,
        storageSize: settings.rabbitmq.storageSize,
        resources: settings.rabbitmq.resources,
        operator: operators?.ready.rabbitmq ?? [],
      })
    : new RabbitMq(`${prefix}-rabbitmq`, {
        platform,
        image: settings.rabbitmq.image,
        storageSize: settings.rabbitmq.storageSize,
        resources: settings.rabbitmq.resources,
        hostPort: settings.rabbitmq.hostPort,
      });

// E-mail: the configured relay, or on Docker a Mailpit sink (its UI shows what the tasks sent).
const MAILPIT_SMTP = 1025;
const mailSink =
  !settings.smtp && settings.platform === "docker"
    ? platform.deploy(
        {
          name: `${prefix}-mail`,
          role: "smtp-sink",
          instance: `${prefix}-mail`,
          image: "axllent/mailpit:v1.21",
          // Mailpit keeps mail in memory and listens above 1024: any unprivileged user will do.
          runAs: SERVICE_IMAGE_USER,
          ports: [
            { name: "smtp", port: MAILPIT_SMTP, hostPort: 11025 },
            { name: "http", port: 8025, hostPort: 18025 },
          ],
          healthCheck: { command: ["/mailpit", "readyz"], intervalSeconds: 10, timeoutSeconds: 3, retries: 3, startPeriodSeconds: 5 },
          resources: { cpu: "50m", memory: "64Mi" },
          replicas: 1,
        },
        new pulumi.ComponentResource("shopfds:mail:MailSink", `${prefix}-mail`),
      )
    : undefined;
const smtpPassword = config.getSecret("smtpPassword");
const smtpFor = (inside: boolean): pulumi.Output<StackOutputs["smtp"]> | undefined => {
  if (settings.smtp) {
    const { host, port, secure, from, user } = settings.smtp;
    return pulumi.output(smtpPassword ?? "").apply((password) => ({ host, port, secure, from, ...(user ? { user } : {}), ...(password ? { password } : {}) }));
  }
  if (!mailSink) return undefined;
  const endpoint = inside ? { host: mailSink.internalHost(0), port: MAILPIT_SMTP } : mailSink.instanceEndpoints("smtp")[0]!;
  return pulumi.output({ ...endpoint, secure: false, from: "ShopFDS <no-reply@shopfds.local>" });
};

const cardHashKeyOutputs = pulumi.all(cardHashKeys.map((k) => pulumi.all([k.version, k.key]).apply(([version, key]) => ({ version, key }))));

const sentryProject = settings.sentry.enabled
  ? new ShopSentryProject(`${prefix}-sentry`, { organization: settings.sentry.organization, team: settings.sentry.team, environment: settings.sentry.environment })
  : undefined;

// On Kubernetes, PostgreSQL takes TLS only: workloads verify it against the operator's CA, mounted
// (that one key) from the Secret CloudNativePG keeps.
const POSTGRES_CA_DIR = "/run/secrets/postgres-ca";
const contractFiles: ExistingSecretFiles[] = db instanceof CnpgPostgres ? [{ secretName: db.caSecretName, keys: ["ca.crt"], directory: POSTGRES_CA_DIR }] : [];
const postgresTls = db instanceof CnpgPostgres ? { tls: { caFile: `${POSTGRES_CA_DIR}/ca.crt` } } : {};
// On Kubernetes the router finds the replica pods by DNS, the `-ro` Service the fallback (CnpgPostgres).
const replicaDiscovery = db instanceof CnpgPostgres ? { replicaDiscovery: db.replicaDiscovery } : {};

// Workloads inside the stack read the same contract, with the addresses they see from inside.
const insideOutputs: pulumi.Output<string> = pulumi
  .all([db.password, cache.password, cardHashKeyOutputs, mq.internalUrl, smtpFor(true), sentryProject ? pulumi.all([sentryProject.dsn, sentryProject.environment]) : undefined])
  .apply(([pgPassword, redisPassword, keys, amqpUrl, smtp, sentry]) =>
    JSON.stringify({
      postgres: { primary: db.internal.primary, replicas: db.internal.replicas, ...replicaDiscovery, database: db.database, user: db.user, password: pgPassword, ...postgresTls },
      redis: { nodes: cache.internalNodes, password: redisPassword },
      fds: { cardHashKeys: keys },
      rabbitmq: { url: amqpUrl, managementUrl: mq.internalManagementUrl },
      ...(smtp ? { smtp } : {}),
      ...(sentry ? { sentry: { dsn: sentry[0], environment: sentry[1] } } : {}),
    } satisfies StackOutputs),
  );

// The migrations run once per deployment, before any workload that uses the schema (FR-006): a
// one-shot container on Docker, a Job on Kubernetes, with the service image and the outputs contract.
const migrationJob = platform.runOnce(
  {
    name: `${prefix}-migrate`,
    role: "migrate",
    instance: `${prefix}-migrate`,
    image: settings.jobs.image,
    command: imageCommand("migrate", "up"),
    env: { SHOPFDS_OUTPUTS_FILE: JOB_PATHS.outputs },
    secretFiles: [{ path: JOB_PATHS.outputs, content: pulumi.secret(insideOutputs) }],
    existingSecretFiles: contractFiles,
    resources: { cpu: "100m", memory: "256Mi" },
    runAs: SERVICE_IMAGE_USER,
    dependsOn: db.services,
  },
  new pulumi.ComponentResource("shopfds:database:Migrations", `${prefix}-migrations`),
);
const migrated: DeployedService = { ...db.services[0]!, name: "migrations", resources: [migrationJob] };

const jobs = new JobRunners(`${prefix}-jobs`, {
  platform,
  image: settings.jobs.image,
  broker: mq,
  outputsJson: pulumi.secret(insideOutputs),
  publicUrl: settings.service.publicUrl ?? serviceInsideUrl(`${prefix}-service`),
  workers: settings.jobs.workers,
  flower: { ...settings.jobs.flower, hostPort: settings.platform === "docker" ? settings.jobs.flower.hostPort : undefined },
  contractFiles,
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
      ...(settings.service.publicUrl ? { publicUrl: settings.service.publicUrl } : {}),
      hostPort: settings.platform === "docker" ? settings.service.hostPort : undefined,
      contractFiles,
      dependsOn: [...db.services, cache.service, mq.broker, migrated],
    })
  : undefined;

const ES_EXPORTER_IMAGE = "quay.io/prometheuscommunity/elasticsearch-exporter:v1.5.0";
const elk = !settings.logging.enabled
  ? undefined
  : platform instanceof KubernetesPlatform
    ? new EckLogging(`${prefix}-logging`, {
        platform,
        nodes: settings.logging.nodes,
        storageSize: settings.logging.storageSize,
        resources: settings.logging.resources,
        memory: { kibana: settings.logging.kibanaMemory, logstash: settings.logging.logstashMemory, filebeat: settings.logging.filebeatMemory },
        operator: operators?.ready.eck ?? [],
        images: { setup: "curlimages/curl:8.7.1", exporter: ES_EXPORTER_IMAGE },
      })
    : new Logging(`${prefix}-logging`, {
        platform,
        images: {
          elasticsearch: "docker.elastic.co/elasticsearch/elasticsearch:7.17.18",
          logstash: "docker.elastic.co/logstash/logstash:7.17.18",
          kibana: "docker.elastic.co/kibana/kibana:7.17.18",
          setup: "curlimages/curl:8.7.1",
          filebeat: "docker.elastic.co/beats/filebeat:7.17.18",
        },
        stack: prefix,
        storageSize: settings.logging.storageSize,
        resources: settings.logging.resources,
        hostPort: settings.logging.hostPort,
      });


// Alerts: Slack through the secret setting slackWebhookUrl (`pulumi config set --secret
// slackWebhookUrl …`); without it, a Docker stack runs a Slack-compatible sink (the service image's
// webhook sink), and a Kubernetes stack refuses to deploy.
let monitor: Monitoring | OperatorMonitoring | undefined;
if (settings.monitoring.enabled) {
  const slackSecret = config.getSecret("slackWebhookUrl");
  let slackWebhookUrl: pulumi.Input<string>;
  if (slackSecret) slackWebhookUrl = slackSecret;
  else if (settings.platform === "docker") {
    const sink = platform.deploy(
      {
        name: `${prefix}-slack-sink`,
        role: "webhook-sink",
        instance: `${prefix}-monitoring`,
        image: settings.jobs.image,
        runAs: SERVICE_IMAGE_USER,
        command: imageCommand("webhookSink", "8080", "/tmp/slack-messages"),
        ports: [{ name: "http", port: 8080 }],
        healthCheck: { command: ["node", "-e", "fetch('http://127.0.0.1:8080/-/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"], intervalSeconds: 15, timeoutSeconds: 5, retries: 3, startPeriodSeconds: 10 },
        resources: { cpu: "25m", memory: "64Mi" },
        replicas: 1,
      },
      new pulumi.ComponentResource("shopfds:monitoring:SlackSink", `${prefix}-slack-sink`),
    );
    slackWebhookUrl = pulumi.secret(`http://${sink.internalHost(0)}:8080/slack`);
  } else {
    throw new Error("unreachable: requiredSecrets() asks for slackWebhookUrl on Kubernetes");
  }
  const mail = settings.smtp ?? { host: mailSink!.internalHost(0), port: MAILPIT_SMTP, from: "ShopFDS <no-reply@shopfds.local>", user: undefined };
  const email = {
    to: settings.monitoring.alertEmail,
    from: mail.from,
    smarthost: `${mail.host}:${mail.port}`,
    requireTls: settings.smtp !== undefined,
    ...(mail.user ? { username: mail.user } : {}),
    ...(settings.smtp && smtpPassword ? { password: smtpPassword } : {}),
  };
  monitor =
    platform instanceof KubernetesPlatform
      ? new OperatorMonitoring(`${prefix}-monitoring`, {
          platform,
          slackWebhookUrl,
          slackChannel: settings.monitoring.slackChannel,
          email,
          redis: { nodes: cache.internalNodes, password: cache.password, exporterImage: "oliver006/redis_exporter:v1.50.0" },
          scraped: [
            ...(service ? [{ service: service.service.name, port: "http", job: "shopfds-services" }] : []),
            { service: jobs.workers.name, port: "metrics", job: "shopfds-services" },
            { service: mq.broker.name, port: "prometheus", job: "rabbitmq" },
            ...(elk instanceof EckLogging ? [{ service: elk.exporterService, port: "metrics", job: "elasticsearch" }] : []),
          ],
          operator: operators?.ready.prometheus ?? [],
          dependsOn: [cache.service],
        })
      : new Monitoring(`${prefix}-monitoring`, {
          platform,
          images: {
            prometheus: "prom/prometheus:v2.42.0",
            alertmanager: "prom/alertmanager:v0.25.0",
            nodeExporter: "prom/node-exporter:v1.5.0",
            postgresExporter: "quay.io/prometheuscommunity/postgres-exporter:v0.12.0",
            redisExporter: "oliver006/redis_exporter:v1.50.0",
          },
          storageSize: settings.monitoring.storageSize,
          slackWebhookUrl,
          slackChannel: settings.monitoring.slackChannel,
          email,
          postgres: { primary: db.internal.primary, database: db.database, user: db.user, password: db.password },
          redis: { nodes: cache.internalNodes, password: cache.password },
          rabbitmqMetrics: `${mq.broker.internalHost(0)}:15692`,
          serviceTargets: [...(service?.metricsTargets ?? []), ...jobs.metricsTargets],
          ...(elk instanceof Logging ? { elasticsearch: { url: elk.elasticsearchUrl, password: elk.elasticPassword, image: ES_EXPORTER_IMAGE } } : {}),
          hostPort: settings.monitoring.hostPort,
          dependsOn: [...db.services, cache.service],
        });
}

if (platform instanceof KubernetesPlatform) {
  new NetworkPolicies(`${prefix}-network`, {
    platform,
    operatorNamespaces: [OPERATORS.cnpg.namespace, OPERATORS.eck.namespace, OPERATORS.rabbitmq.namespace],
    monitoringNamespace: OPERATORS.prometheus.namespace,
    ...(elk instanceof EckLogging ? { logShipping: elk.shipping } : {}),
    ...(service ? { ingress: { namespace: settings.kubernetes!.ingressNamespace, serviceName: service.service.name, port: SERVICE_PORT } } : {}),
  });
}

/** Typed against the contract, so the program cannot export a shape the runtime would reject. */
type Exported<T> = { [K in keyof T]: pulumi.Input<T[K]> };

export const postgres: Exported<StackOutputs["postgres"]> = {
  primary: db.primary,
  replicas: db.replicaEndpoints,
  ...replicaDiscovery,
  database: db.database,
  user: db.user,
  password: db.password,
};

export const redis: Exported<StackOutputs["redis"]> = {
  nodes: cache.nodes,
  password: cache.password,
  ...(cache.natMap ? { natMap: cache.natMap } : {}),
};

export const fds: Exported<StackOutputs["fds"]> = {
  cardHashKeys: pulumi.secret(cardHashKeyOutputs),
};

export const rabbitmq: Exported<StackOutputs["rabbitmq"]> = {
  url: mq.url,
  managementUrl: mq.managementUrl,
};

/** Where services send e-mail (part of the contract; secret, as it may hold the relay's password). */
const smtpOutputs = smtpFor(false);
export const smtp = smtpOutputs ? pulumi.secret(smtpOutputs) : undefined;

/** Prometheus and Alertmanager (undefined when monitoring is off). */
export const monitoring: StackOutputs["monitoring"] = monitor ? { prometheusUrl: monitor.prometheusUrl, alertmanagerUrl: monitor.alertmanagerUrl } : undefined;

/** The ELK stack (undefined when `shopfds:logging.enabled` is off, as in the dev stack by default). */
export const logging: StackOutputs["logging"] = elk ? { logstash: elk.logstash, kibanaUrl: elk.kibanaUrl } : undefined;

/** The stack's Sentry project's DSN (secret) and environment, when `shopfds:sentry.enabled`. */
export const sentry = sentryProject ? { dsn: sentryProject.dsn, environment: sentryProject.environment } : undefined;

/** Not part of the services' contract: where people reach the reference service (undefined when off). */
export const serviceUrl = service?.url;

/** Not part of the services' contract: Grafana (Kubernetes stacks; user admin). */
export const grafana = monitor instanceof OperatorMonitoring ? { url: monitor.grafanaUrl, user: "admin", password: pulumi.secret(grafanaAdminPassword!) } : undefined;

/** Not part of the services' contract: where people open Flower (undefined when it is off). */
export const flower = jobs.flower ? { url: jobs.flower.url, user: jobs.flower.user, password: pulumi.secret(jobs.flower.password) } : undefined;
