/**
 * The stack configuration: one zod schema, read once by index.ts, a union on `platform`: a Docker
 * branch (the engine, the host ports its servers publish) and a Kubernetes branch (context and
 * namespace, operators, backups, a relay, cluster sizes), each refusing the other's settings. Every
 * default is in the schema. Components never read `pulumi.Config` or the environment themselves; they
 * receive the typed, defaulted values below.
 */
import { BlockList, isIP } from "node:net";
import { z } from "zod";
import { RULES } from "../runtime/rules";
import { IMAGES } from "./versions";

export const PROJECT = "shopfds";

const k8sQuantity = z.string().regex(/^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti)?$/, "must be a Kubernetes quantity such as 500m, 512Mi or 10Gi");
// The rules the renderers and the outputs contract share (runtime/rules.ts).
const pgSize = RULES.pgSize.schema;
const identifier = RULES.identifier.schema;
const port = RULES.port.schema;

export const resourcesSchema = z
  .object({
    /** CPU request; the limit is twice the request. */
    cpu: k8sQuantity,
    /** Memory request and limit (memory is not overcommitted). */
    memory: k8sQuantity,
  })
  .strict();

/** PostgreSQL settings both platforms take. */
const postgresBase = z.object({
  database: identifier.default("shopfds"),
  user: identifier.default("shopfds"),
  storageSize: k8sQuantity.default("10Gi"),
  maxConnections: z.number().int().min(10).max(10000).default(200),
  sharedBuffers: pgSize.default("128MB"),
  maxSlotWalKeepSize: pgSize.default("2GB"),
  resources: resourcesSchema.default({ cpu: "250m", memory: "512Mi" }),
});
const replicas = (fallback: number) => z.number().int("must be an integer").min(1, "must be at least 1 (FR-001)").max(16, "must be at most 16").default(fallback);

export const postgresDockerSchema = z
  .object({
    /** An image with the official postgres entrypoint. */
    image: z.string().min(1).default(IMAGES.postgres),
    /** Streaming replicas. */
    replicas: replicas(1),
    ...postgresBase.shape,
    /** First host port published on 127.0.0.1 (primary; replicas take the next ones). */
    hostPort: port.default(15432),
  })
  .strict();

export const postgresKubernetesSchema = z
  .object({
    /** A CloudNativePG operand image with the Barman tools for WAL archiving. */
    image: z.string().min(1).default(IMAGES.postgresOperand),
    replicas: replicas(2),
    ...postgresBase.shape,
    /**
     * Bootstrap the cluster from another cluster's backups instead of an empty database (point-in-time
     * recovery; docs/stacks.md, "Restore to a point in time").
     */
    restore: z
      .object({
        /** The backup folder (backup.serverName) of the cluster to restore from. */
        fromServerName: z.string().regex(/^[a-z0-9-]{1,63}$/, "must be lower-case letters, digits and -"),
        /** Replay WAL up to this moment (RFC 3339 with offset); the latest WAL when absent. */
        targetTime: z.iso.datetime({ offset: true, error: "must be an RFC 3339 time with offset such as 2026-11-29T08:00:00+09:00" }).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const redisBase = z.object({
    image: z.string().min(1).default(IMAGES.redis),
    /** maxmemory of each node (Redis units); the memory request must leave room above it. */
    maxMemory: RULES.redisSize.schema.default("256mb"),
    /** Failover starts after this; failover takes about 1.7 × it + 0.7 s, FR-014 allows 10 s. */
    nodeTimeoutMs: RULES.redisNodeTimeoutMs.schema.default(2000),
    storageSize: k8sQuantity.default("1Gi"),
    resources: resourcesSchema.default({ cpu: "100m", memory: "384Mi" }),
});
export const redisDockerSchema = redisBase.extend({ /** Node `i` is published on 127.0.0.1:hostPort + i. */ hostPort: port.default(16379) }).strict();
export const redisKubernetesSchema = redisBase.strict();

const rabbitMqBase = z.object({
  /** 3.13 or later on Kubernetes (the local stack runs Debian's 3.10.8). */
  image: z.string().min(1).default(IMAGES.rabbitmq),
  storageSize: k8sQuantity.default("8Gi"),
  resources: resourcesSchema.default({ cpu: "250m", memory: "512Mi" }),
});
/** Docker runs one node. */
export const rabbitMqDockerSchema = rabbitMqBase.extend({ /** AMQP on 127.0.0.1:hostPort, the management UI on hostPort + 1. */ hostPort: port.default(15680) }).strict();
export const rabbitMqKubernetesSchema = rabbitMqBase
  .extend({
    /** Nodes of the RabbitmqCluster (3 in prod; a node may then restart or drain). */
    replicas: z.number().int("must be an integer").min(1, "must be at least 1").max(9, "must be at most 9").default(3),
  })
  .strict();

const jobsSchema = <F extends z.ZodType>(flower: F) =>
  z
  .object({
    /** The ShopFDS service image (runtime, workers, scheduler); built by the service's pipeline. */
    image: z.string().min(1).default("ghcr.io/shopfds/shopfds-service:latest"),
    workers: z
      .object({
        replicas: z.number().int("must be an integer").min(2, "must be at least 2 (FR-015)").max(50).default(2),
        concurrency: z.number().int("must be an integer").min(4, "must be at least 4 (FR-015)").max(64).default(4),
        resources: resourcesSchema.default({ cpu: "250m", memory: "256Mi" }),
      })
      .strict()
      .prefault({}),
    flower,
  })
  .strict();
const flowerBase = z.object({
  /** Flower is optional; its outputs are undefined when off. */
  enabled: z.boolean().default(true),
  image: z.string().min(1).default(IMAGES.flower),
});
/** Docker: Flower's UI on 127.0.0.1:flower.hostPort. */
export const jobsDockerSchema = jobsSchema(flowerBase.extend({ hostPort: port.default(15555) }).strict().prefault({}));
export const jobsKubernetesSchema = jobsSchema(flowerBase.strict().prefault({}));

/** The reference service (service/bin/service.ts), the same image as the workers. */
const serviceBase = z.object({
    enabled: z.boolean().default(true),
    replicas: z.number().int("must be an integer").min(1, "must be at least 1").max(50).default(1),
    resources: resourcesSchema.default({ cpu: "250m", memory: "256Mi" }),
    /** Where clients reach the service (links in its answers); default: its address in the stack. */
    publicUrl: z.string().url("must be an absolute URL such as https://shop.example").optional(),
});
/**
 * The service at the edge (Kubernetes): Ingresses for ingress-nginx with the certificate of a
 * cert-manager ACME Issuer of the stack's own, per-route rate limits in the controller's terms. The
 * host is service.publicUrl's (https required). The controller and cert-manager are the cluster's, like
 * its storage class (docs/stacks.md, "The edge").
 */
export const edgeConfigSchema = z
  .object({
    /** The IngressClass of the cluster's ingress-nginx controller. */
    ingressClassName: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be an IngressClass name such as nginx").default("nginx"),
    /** The ACME account's contact address (expiry notices). */
    acmeEmail: z.string().regex(/^[^@\s]+@[^@\s]+\.[^@\s]+$/, "must be an e-mail address"),
    /** The ACME directory: Let's Encrypt's staging one for staging (its certificates are not trusted, its limits are generous), its production one for prod. */
    acmeServer: z.string().url("must be an ACME directory URL").default("https://acme-v02.api.letsencrypt.org/directory"),
    /** POST /login per client IP and minute (ingress-nginx limit-rpm), before the service's own per-account lockout. */
    loginPerMinute: z.number().int("must be an integer").min(1, "must be at least 1").max(6000).default(10),
    /** POST /orders per client IP and second (limit-rps). */
    ordersPerSecond: z.number().int("must be an integer").min(1, "must be at least 1").max(1000).default(5),
    /** The burst a client may take above its rate, as a multiple of it (limit-burst-multiplier). */
    burstMultiplier: z.number().int("must be an integer").min(1, "must be at least 1").max(20).default(5),
  })
  .strict();

/** A CIDR block, IPv4 or IPv6 (`203.0.113.0/24`, `2001:db8::/32`). */
const cidr = z.string().superRefine((s, ctx) => {
  if (cidrParts(s) === undefined) ctx.addIssue({ code: "custom", message: `must be a CIDR block such as 203.0.113.0/24 or 2001:db8::/32 (got ${JSON.stringify(s)})` });
});

/** `[address, prefix, family]` of a CIDR block, or undefined when it is not one. */
export function cidrParts(s: string): [string, number, "ipv4" | "ipv6"] | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  const family = m ? isIP(m[1]!) : 0;
  if (!m || family === 0 || Number(m[2]) > (family === 4 ? 32 : 128)) return undefined;
  return [m[1]!, Number(m[2]), family === 4 ? "ipv4" : "ipv6"];
}

/** Whether CIDR `inner` lies inside CIDR `outer` (same family, a longer or equal prefix, its address inside). */
export function cidrWithin(inner: string, outer: string): boolean {
  const a = cidrParts(inner);
  const b = cidrParts(outer);
  if (!a || !b || a[2] !== b[2] || a[1] < b[1]) return false;
  const list = new BlockList();
  list.addSubnet(b[0], b[1], b[2]);
  return list.check(a[0], a[2]);
}

/** Addresses no public relay has: private, shared (CGNAT), link-local (the clouds' metadata service), unique-local. */
export const NON_PUBLIC_CIDRS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10"] as const;
/**
 * Sentry SaaS's ingest addresses for organization DSNs (`o<n>.ingest.sentry.io`, US and EU), as its
 * docs list them (docs.sentry.io/security-legal-pii/security/ip-ranges, updated by getsentry/sentry-docs#15529, 2025-11).
 */
export const SENTRY_INGEST_CIDRS = ["34.120.195.249/32", "34.160.81.0/32", "34.102.210.18/32", "2600:1901:0:5e8a::/64", "2600:1901:0:7edb::/64"] as const;

const dnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "must be a DNS-1123 label");

/** Where an egress rule lets pods connect: address blocks (with holes), or every pod of a namespace. */
export const egressPeerSchema = z
  .object({
    cidrs: z.array(cidr).min(1, "must list at least one block").optional(),
    /** Holes in `cidrs` (each must lie inside one of them). */
    except: z.array(cidr).optional(),
    namespace: dnsLabel.optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if ((p.cidrs === undefined) === (p.namespace === undefined)) ctx.addIssue({ code: "custom", path: [], message: "must set either cidrs or namespace (not both, not neither)" });
    if (p.except && !p.cidrs) ctx.addIssue({ code: "custom", path: ["except"], message: "needs cidrs to make holes in" });
    for (const [i, hole] of (p.except ?? []).entries())
      if (!(p.cidrs ?? []).some((c) => cidrWithin(hole, c))) ctx.addIssue({ code: "custom", path: ["except", i], message: `must lie inside one of cidrs (got "${hole}")` });
  });

/**
 * Where ShopFDS's pods may connect outside the stack (Kubernetes; components/platform/network-policies.ts).
 * Inside the stack the destinations follow from the program (DNS, PostgreSQL, Redis, RabbitMQ, Elasticsearch).
 */
export const egressConfigSchema = z
  .object({
    /** The SMTP relay (on smtp.port). Default: any public address, so mail works on day one; narrow it to the relay's published ranges. */
    smtp: egressPeerSchema.default({ cidrs: ["0.0.0.0/0", "::/0"], except: [...NON_PUBLIC_CIDRS] }),
    /** Sentry's ingest addresses (HTTPS), when sentry.enabled. */
    sentry: z.array(cidr).min(1, "must list at least one block").default([...SENTRY_INGEST_CIDRS]),
    /** An OpenTelemetry collector the workloads export to (OTLP: 4317 gRPC, 4318 HTTP); absent: none. */
    otlp: z.object({ peer: egressPeerSchema, port }).strict().optional(),
    /** The cluster's DNS: its namespace and its pods' labels (CoreDNS under kube-dns's labels on kubeadm, EKS, GKE and kind). */
    dns: z
      .object({ namespace: dnsLabel.default("kube-system"), podLabels: z.record(z.string(), z.string()).default({ "k8s-app": "kube-dns" }) })
      .strict()
      .prefault({}),
  })
  .strict();

export const serviceDockerSchema = serviceBase.extend({ /** The service on 127.0.0.1:hostPort. */ hostPort: port.default(18080) }).strict();
export const serviceKubernetesSchema = serviceBase.strict();

/**
 * PostgreSQL backups (Kubernetes stacks): WAL archiving and a daily base backup to S3-compatible
 * storage through CloudNativePG. The keys are the secret settings backupAccessKeyId and
 * backupSecretAccessKey. Required on Kubernetes; a throw-away cluster (kind) says `enabled: false`.
 */
export const backupConfigSchema = z
  .object({
    enabled: z.boolean({ error: "must be true or false" }).default(true),
    /** Bucket and prefix, e.g. `s3://shopfds-backups/prod`. */
    destinationPath: z.string().regex(/^s3:\/\/[a-z0-9.-]{3,63}(\/.*)?$/, "must be an S3 location such as s3://shopfds-backups/prod").optional(),
    /** S3-compatible endpoint other than AWS (MinIO, Ceph…); AWS when absent. */
    endpointUrl: z.string().url("must be an http(s) URL").optional(),
    /**
     * The folder under destinationPath this cluster archives into; a cluster restored from another must
     * use a new one (CloudNativePG refuses to archive over an existing one). Default: the cluster's name.
     */
    serverName: z.string().regex(/^[a-z0-9-]{1,63}$/, "must be lower-case letters, digits and -").optional(),
    /** How long base backups and WAL are kept (CloudNativePG's retentionPolicy: 30d, 12w, 6m). */
    retention: z.string().regex(/^[1-9][0-9]*[dwm]$/, "must be a number of days, weeks or months such as 30d").default("30d"),
    /** When the base backup runs: a six-field cron (seconds first), UTC. */
    schedule: z.string().regex(/^(\S+\s+){5}\S+$/, "must be a six-field cron expression such as 0 0 3 * * *").default("0 0 3 * * *"),
  })
  .strict();

export const smtpConfigSchema = z
  .object({
    host: z.string().min(1, "must be a host name"),
    port: port.default(587),
    /** TLS from the start (465); otherwise STARTTLS. */
    secure: z.boolean().default(false),
    from: z.string().min(3, "must be a sender such as ShopFDS <no-reply@shop.example>"),
    user: z.string().min(1).optional(),
  })
  .strict();

const monitoringBase = z.object({
    enabled: z.boolean().default(true),
    slackChannel: z.string().regex(/^#[a-z0-9_-]+$/, "must be a Slack channel such as #shopfds-alerts").default("#shopfds-alerts"),
    /** Where critical alerts are mailed (through the stack's SMTP relay or sink). */
    alertEmail: z.string().regex(/^[^@\s]+@[^@\s]+$/, "must be an e-mail address").default("oncall@shopfds.example"),
    storageSize: k8sQuantity.default("10Gi"),
});
export const monitoringDockerSchema = monitoringBase.extend({ /** Prometheus on 127.0.0.1:hostPort, Alertmanager on hostPort + 1. */ hostPort: port.default(19090) }).strict();
export const monitoringKubernetesSchema = monitoringBase
  .extend({
    /**
     * The memory of the Prometheus stack's pods (components/monitoring/prometheus-stack.ts
     * PROMETHEUS_STACK_MEMORY): `small` for a throw-away cluster, `production` otherwise. The chart
     * itself sets none (its values are `{}`), so without these they would be unbounded.
     */
    size: z.enum(["small", "production"], { error: 'must be "small" or "production"' }).default("production"),
  })
  .strict();

const loggingBase = z.object({
  /** The ELK stack; off by default (heavy for a laptop), on in prod. */
  enabled: z.boolean().default(false),
  storageSize: k8sQuantity.default("20Gi"),
  resources: resourcesSchema.default({ cpu: "500m", memory: "2Gi" }),
});
/** Docker runs one Elasticsearch node. */
export const loggingDockerSchema = loggingBase.extend({ /** Kibana on 127.0.0.1:hostPort, Logstash's JSON input on hostPort + 1. */ hostPort: port.default(15601) }).strict();
export const loggingKubernetesSchema = loggingBase
  .extend({
    /** Elasticsearch data nodes (3 in prod, so a lost node loses no shard). */
    nodes: z.number().int("must be an integer").min(1, "must be at least 1").max(9, "must be at most 9").default(3),
    /**
     * Memory (request = limit) of Kibana, Logstash (its JVM heap is half of it: Logstash's
     * own default heap is a fixed 1g, which a 1Gi pod cannot hold) and each node's Filebeat. The
     * defaults are ECK 3.5.0's own defaults (tests/fixtures/upstream/facts.yaml).
     */
    kibanaMemory: k8sQuantity.default("2Gi"),
    logstashMemory: k8sQuantity.default("2Gi"),
    filebeatMemory: k8sQuantity.default("300Mi"),
  })
  .strict();

export const sentryConfigSchema = z
  .object({
    /** Declares this stack's Sentry project; needs the provider's token (`pulumi config set --secret sentry:token …`). */
    enabled: z.boolean().default(false),
    organization: z.string().regex(/^[a-z0-9-]+$/, "must be a Sentry organization slug").default("shopfds"),
    team: z.string().regex(/^[a-z0-9-]+$/, "must be a Sentry team slug").default("platform"),
    environment: z.enum(["dev", "staging", "production"], { error: 'must be "dev", "staging" or "production"' }).default("dev"),
  })
  .strict();

export const fdsConfigSchema = z
  .object({
    /**
     * The current card-hash key version. Keys 1…N are generated and all are exported; raising N
     * rotates the key (new entries use N, checks try every version, so no entry is lost).
     */
    cardHashKeyVersion: z.number().int("must be an integer").min(1, "must be at least 1").max(32, "must be at most 32").default(1),
  })
  .strict();

/**
 * Traces of the service, the workers and the scheduler (OpenTelemetry, runtime/tracing): exported over
 * OTLP/HTTP to a collector the organisation runs; absent, tracing is off.
 */
export const tracingConfigSchema = z
  .object({
    /** The collector's OTLP/HTTP base URL (the runtime adds /v1/traces), e.g. http://otel-collector.observability:4318. */
    otlpEndpoint: z
      .string()
      .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), "must be an http:// or https:// URL of an OTLP/HTTP collector, e.g. http://otel-collector.observability:4318"),
    /** Share of new traces kept (a trace a caller started keeps its caller's decision). */
    sampleRatio: z.number({ error: "must be a number from 0 to 1" }).min(0, "must be from 0 to 1").max(1, "must be from 0 to 1").default(1),
  })
  .strict();

export type TracingConfig = z.infer<typeof tracingConfigSchema>;

/** The OTEL_* environment of a workload that traces (read by @shopfds/runtime/tracing/register); none when tracing is off. */
export function tracingEnv(t: TracingConfig | undefined, serviceName: string): Record<string, string> {
  return t ? { OTEL_EXPORTER_OTLP_ENDPOINT: t.otlpEndpoint, OTEL_SERVICE_NAME: serviceName, OTEL_TRACES_SAMPLER_ARG: String(t.sampleRatio) } : {};
}

/** What both platforms take, each setting with its default. */
const commonStack = {
  tracing: tracingConfigSchema.optional(),
  fds: fdsConfigSchema.prefault({}),
  /** The relay the e-mail tasks use (its password: the secret setting smtpPassword). On Docker, when
   * absent, the stack runs a Mailpit sink instead; Kubernetes stacks must name a relay. */
  smtp: smtpConfigSchema.optional(),
  sentry: sentryConfigSchema.prefault({}),
};

/** A Docker stack (dev): the engine, and the host ports its servers publish on 127.0.0.1. */
export const dockerStackSchema = z
  .object({
    platform: z.literal("docker"),
    /** Docker stacks: the engine to deploy to (an explicit provider). */
    docker: z
      .object({
        host: z.string().regex(/^(unix|tcp|ssh|npipe):\/\/.+$/, "must be a Docker host such as unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host").default("unix:///var/run/docker.sock"),
      })
      .strict()
      .default({ host: "unix:///var/run/docker.sock" }),
    postgres: postgresDockerSchema.prefault({}),
    redis: redisDockerSchema.prefault({}),
    rabbitmq: rabbitMqDockerSchema.prefault({}),
    jobs: jobsDockerSchema.prefault({}),
    service: serviceDockerSchema.prefault({}),
    monitoring: monitoringDockerSchema.prefault({}),
    logging: loggingDockerSchema.prefault({}),
    ...commonStack,
  })
  .strict();

/** A Kubernetes stack (staging, prod, kind): its context and namespace, the operators, backups, a relay. */
export const kubernetesStackSchema = z
  .object({
    platform: z.literal("kubernetes"),
    kubernetes: z
      .object({
        namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "must be a DNS-1123 label"),
        storageClass: z.string().min(1).optional(),
        /**
         * The kubeconfig context to deploy into, required: without an explicit provider a `pulumi up`
         * goes to whatever context kubectl has current.
         */
        context: z.string().min(1, "must not be empty"),
        /** A kubeconfig file; the default one (KUBECONFIG, ~/.kube/config) when absent. */
        kubeconfig: z.string().min(1).optional(),
        /** Protect the namespace and every workload holding data from deletion by Pulumi (KubernetesPlatformArgs.protect). */
        protect: z.boolean({ error: "must be true or false" }).default(true),
        /** `install`: the program installs the operators (components/platform/operators.ts); `existing`: the cluster runs them already. */
        operators: z.enum(["install", "existing"], { error: 'must be "install" or "existing"' }).default("install"),
        /** The ingress controller's namespace: the only one allowed to reach the service's HTTP port. */
        ingressNamespace: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "must be a DNS-1123 label").default("ingress-nginx"),
        /** The cluster's DNS domain (kubelet's --cluster-domain): fully qualified names are built on it. */
        clusterDomain: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, "must be a DNS domain such as cluster.local").default("cluster.local"),
      })
      .strict()
      .optional(),
    postgres: postgresKubernetesSchema.prefault({}),
    redis: redisKubernetesSchema.prefault({}),
    rabbitmq: rabbitMqKubernetesSchema.prefault({}),
    jobs: jobsKubernetesSchema.prefault({}),
    service: serviceKubernetesSchema.prefault({}),
    monitoring: monitoringKubernetesSchema.prefault({}),
    logging: loggingKubernetesSchema.prefault({}),
    /** PostgreSQL's WAL archive and base backups (required unless `enabled: false`). */
    backup: backupConfigSchema.optional(),
    /** The service's Ingress, certificate and edge limits; absent: the service stays inside the cluster. */
    edge: edgeConfigSchema.optional(),
    /** Where ShopFDS's pods may connect beyond the stack (every other egress is denied). */
    egress: egressConfigSchema.prefault({}),
    ...commonStack,
  })
  .strict();

export const PLATFORMS = ["docker", "kubernetes"] as const;
const PLATFORM_ERROR = 'must be "docker" or "kubernetes"';

/** The stack settings: a union on `platform`, each branch with its own settings and defaults. */
export const stackConfigSchema = z
  .discriminatedUnion("platform", [dockerStackSchema, kubernetesStackSchema], { error: PLATFORM_ERROR })
  .superRefine((cfg, ctx) => {
    if (cfg.platform === "kubernetes" && !cfg.kubernetes) {
      ctx.addIssue({ code: "custom", path: ["kubernetes"], message: "is required when platform is \"kubernetes\" (set kubernetes.namespace)" });
    }
    if (cfg.platform === "kubernetes" && cfg.backup?.enabled !== false && !cfg.backup?.destinationPath) {
      ctx.addIssue({ code: "custom", path: ["backup", "destinationPath"], message: "is required when platform is \"kubernetes\" (where PostgreSQL's WAL and base backups go, e.g. s3://shopfds-backups/prod; a throw-away cluster sets backup.enabled: false)" });
    }
    if (cfg.platform === "kubernetes" && /^(docker\.io\/)?(library\/)?postgres:/.test(cfg.postgres.image)) {
      ctx.addIssue({ code: "custom", path: ["postgres", "image"], message: `must be a CloudNativePG operand image on Kubernetes, such as ${POSTGRES_OPERAND_IMAGE} (got "${cfg.postgres.image}": the official image lacks the operator's instance manager tools)` });
    }
    const rabbitVersion = /:(\d+)\.(\d+)/.exec(cfg.rabbitmq.image);
    if (cfg.platform === "kubernetes" && (!rabbitVersion || Number(rabbitVersion[1]) * 100 + Number(rabbitVersion[2]) < 313)) {
      ctx.addIssue({ code: "custom", path: ["rabbitmq", "image"], message: `must be RabbitMQ 3.13 or later on Kubernetes (the cluster operator's supported versions), tagged as such, e.g. rabbitmq:3.13.7-management (got "${cfg.rabbitmq.image}")` });
    }
    const restore = cfg.platform === "kubernetes" ? cfg.postgres.restore : undefined;
    const backup = cfg.platform === "kubernetes" ? cfg.backup : undefined;
    if (restore && backup && restore.fromServerName === (backup.serverName ?? undefined)) {
      ctx.addIssue({ code: "custom", path: ["backup", "serverName"], message: `must differ from postgres.restore.fromServerName (${restore.fromServerName}): the restored cluster archives into a new folder` });
    }
    if (cfg.platform === "kubernetes" && cfg.edge && !cfg.service.publicUrl?.startsWith("https://")) {
      ctx.addIssue({ code: "custom", path: ["service", "publicUrl"], message: `must be an https:// URL when edge is set: its host is the Ingress's and the certificate's (got ${cfg.service.publicUrl === undefined ? "nothing" : `"${cfg.service.publicUrl}"`})` });
    }
    if (cfg.platform === "kubernetes" && cfg.tracing && !cfg.egress.otlp) {
      ctx.addIssue({ code: "custom", path: ["egress", "otlp"], message: `is required when tracing is set on Kubernetes: every other egress is denied, so the pods could not reach ${cfg.tracing.otlpEndpoint} (set egress.otlp.peer and egress.otlp.port)` });
    }
    if (cfg.platform === "kubernetes" && !cfg.smtp) {
      ctx.addIssue({ code: "custom", path: ["smtp"], message: "is required when platform is \"kubernetes\" (the e-mail tasks need a relay: set smtp.host and smtp.from)" });
    }
  });

export type RawStackConfig = z.input<typeof stackConfigSchema>;
export type DockerStackConfig = z.output<typeof dockerStackSchema>;
/** A Kubernetes stack: its `kubernetes` block and SMTP relay are required (the schema's refinement says so). */
export type KubernetesStackConfig = z.output<typeof kubernetesStackSchema> & {
  kubernetes: NonNullable<z.output<typeof kubernetesStackSchema>["kubernetes"]>;
  smtp: NonNullable<z.output<typeof kubernetesStackSchema>["smtp"]>;
};
export type StackConfig = DockerStackConfig | KubernetesStackConfig;

/** CloudNativePG's PostgreSQL 15 operand, the "system" flavour (it carries barman-cloud for the in-tree WAL archiving). */
export const POSTGRES_OPERAND_IMAGE = IMAGES.postgresOperand;

export class StackConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid stack configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  - ${problems.join("\n  - ")}`);
    this.name = "StackConfigError";
  }
}

/**
 * Validates raw stack settings (as `pulumi.Config` returns them) and applies defaults. Every problem is
 * reported at once, each as `shopfds:<key path>: <what is wrong> (got <value>)`.
 */
export function parseStackConfig(raw: Record<string, unknown>): StackConfig {
  const describe = (issue: z.core.$ZodIssue): string => {
    // `shopfds:postgres.replicas`; a key unknown at the top is named under the project alone.
    const key = issue.path.length > 0 ? `${PROJECT}:${issue.path.map(String).join(".")}` : PROJECT;
    // The union's discriminator: its issue carries the whole input; the platform is what to name.
    if (issue.code === "invalid_union" && issue.path.join(".") === "platform") return raw.platform === undefined ? `${key}: is required` : `${key}: ${PLATFORM_ERROR} (got ${JSON.stringify(raw.platform)})`;
    if (issue.code === "unrecognized_keys") return `${key}: unknown setting${issue.keys.length > 1 ? "s" : ""} ${issue.keys.join(", ")}`;
    if (issue.input === undefined && issue.code !== "custom") return `${key}: is required`;
    if (issue.code === "custom") return `${key}: ${issue.message}`;
    return `${key}: ${issue.message} (got ${JSON.stringify(issue.input)})`;
  };
  const result = stackConfigSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data as StackConfig;
  const problems = result.error.issues.map(describe);
  // A platform that is neither: the rest is still checked (as Docker's), so every problem shows at once.
  if (!(PLATFORMS as readonly unknown[]).includes(raw.platform) && raw.platform !== undefined) {
    const rest = dockerStackSchema.safeParse({ ...raw, platform: "docker" }, { reportInput: true });
    if (!rest.success) problems.push(...rest.error.issues.map(describe));
  }
  throw new StackConfigError(problems);
}

/** A secret setting the stack needs, with why and how an operator sets it. */
export interface RequiredSecret {
  /** The full config key, e.g. `shopfds:slackWebhookUrl`, `sentry:token`. */
  readonly key: string;
  readonly why: string;
  /** What the value looks like, for the `pulumi config set --secret` line. */
  readonly example: string;
}

/**
 * The secret settings these settings make necessary. Secrets never live in the stack files, so a
 * missing one is only visible here: `missingSecretsError` turns the missing ones into one error at
 * preview, each with the line that sets it.
 */
export function requiredSecrets(cfg: StackConfig): RequiredSecret[] {
  const out: RequiredSecret[] = [];
  if (cfg.platform === "kubernetes" && cfg.monitoring.enabled) out.push({ key: `${PROJECT}:slackWebhookUrl`, why: "critical alerts must reach Slack", example: "https://hooks.slack.com/services/…" });
  if (cfg.smtp?.user) out.push({ key: `${PROJECT}:smtpPassword`, why: `the SMTP relay's user ${cfg.smtp.user} needs its password`, example: "…" });
  if (cfg.platform === "kubernetes" && cfg.backup?.enabled !== false) {
    out.push({ key: `${PROJECT}:backupAccessKeyId`, why: "PostgreSQL backups are written to the object store with this key", example: "AKIA…" });
    out.push({ key: `${PROJECT}:backupSecretAccessKey`, why: "the object store key's secret", example: "…" });
  }
  if (cfg.sentry.enabled) out.push({ key: "sentry:token", why: "the Sentry provider creates the project and its DSN with it", example: "sntrys_…" });
  return out;
}

/** One error naming every missing secret with the command that sets it (undefined: none missing). */
export function missingSecretsError(required: readonly RequiredSecret[], isSet: (key: string) => boolean, stack: string): Error | undefined {
  const missing = required.filter((r) => !isSet(r.key));
  if (missing.length === 0) return undefined;
  const line = (r: RequiredSecret) => {
    const [namespace, name] = r.key.split(":") as [string, string];
    const key = namespace === PROJECT ? name : r.key;
    return `${r.key}: is required (${r.why}): pulumi config set --secret --stack ${stack} ${key} ${r.example}`;
  };
  return new StackConfigError(missing.map(line));
}