/**
 * What runs the jobs: the TypeScript Celery-compatible workers (≥ 2 instances × ≥ 4 concurrent tasks,
 * FR-015), exactly one scheduler, and Flower (optional, with HTTP basic auth) pointed at the broker.
 * Workers and the scheduler are the ShopFDS service image; they read the stack outputs, as every
 * service does, from a secret file holding the outputs contract.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DeployedService, Endpoint, ExistingSecretFiles, Platform, SERVICE_IMAGE_USER } from "../platform/types";
import { RABBIT_VHOST, type Broker } from "../rabbitmq/docker";
import { imageCommand } from "../service/image";
import { tracingEnv, type TracingConfig } from "../config";
import { FLOWER_CELERY_CONFIG_MODULE, renderFlowerCeleryConfig } from "./flower-config";

export const JOB_PATHS = {
  outputs: "/run/secrets/shopfds-outputs.json",
  aliveFile: "/tmp/shopfds-worker.alive",
  flowerBroker: "/run/secrets/flower-broker-url",
  flowerAuth: "/run/secrets/flower-basic-auth",
  flowerBrokerApi: "/run/secrets/flower-broker-api",
  /** Flower's Celery configuration module's directory (on its PYTHONPATH), when the broker takes TLS only. */
  flowerConfigDir: "/etc/shopfds-flower",
} as const;
const FLOWER_PORT = 5555;
export const WORKER_METRICS_PORT = 9464;
export interface JobRunnersArgs {
  readonly platform: Platform;
  /** The ShopFDS service image. */
  readonly image: string;
  readonly broker: Broker;
  /** The stack outputs as seen from inside the network (JSON, secret), for the runtime's loader. */
  readonly outputsJson: pulumi.Input<string>;
  readonly workers: { readonly replicas: number; readonly concurrency: number; readonly resources: { readonly cpu: string; readonly memory: string } };
  readonly flower: { readonly enabled: boolean; readonly image: string; readonly hostPort?: number };
  /** Where clients reach the service: the prefix of report download links the workers write. */
  readonly publicUrl?: string;
  /** Where the workers' and the scheduler's traces go (OTLP/HTTP); absent: tracing off. */
  readonly tracing?: TracingConfig;
  /** Files the outputs contract points at that an operator creates (Kubernetes: the PostgreSQL CA). */
  readonly contractFiles?: readonly ExistingSecretFiles[];
  /** When the broker takes TLS only: where the stack's CA is mounted (one of contractFiles) for Flower. */
  readonly brokerCaFile?: string;
  /** What must exist before workers start (the database, the Redis cluster's creation job…). */
  readonly dependsOn?: readonly DeployedService[];
}

export class JobRunners extends pulumi.ComponentResource {
  declare readonly workers: DeployedService;
  /** Where Prometheus scrapes the workers (`host:port`, inside the network). */
  declare readonly metricsTargets: string[];
  declare readonly scheduler: DeployedService;
  /** Flower's UI and credentials; undefined when Flower is off. */
  declare readonly flower: { url: string; user: string; password: pulumi.Output<string> } | undefined;

  constructor(name: string, args: JobRunnersArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:jobs:JobRunners", name, {}, opts);
    if (args.workers.replicas < 2 || args.workers.concurrency < 4) {
      throw new Error(`JobRunners ${name}: FR-015 needs at least 2 workers of concurrency 4 (got ${args.workers.replicas} × ${args.workers.concurrency})`);
    }
    const outputsFile = [{ path: JOB_PATHS.outputs, content: pulumi.secret(args.outputsJson) }];
    const env: Record<string, string> = { SHOPFDS_OUTPUTS_FILE: JOB_PATHS.outputs, NODE_ENV: "production", ...(args.publicUrl ? { SHOPFDS_PUBLIC_URL: args.publicUrl } : {}) };
    // Alive while the worker's heartbeat (every 2 s, only while connected to the broker) touches the file.
    const heartbeatCheck = {
      command: ["sh", "-c", `[ $(( $(date +%s) - $(stat -c %Y ${JOB_PATHS.aliveFile}) )) -lt 30 ]`],
      intervalSeconds: 10,
      timeoutSeconds: 5,
      retries: 3,
      startPeriodSeconds: 30,
    };
    const dependsOn = [args.broker.broker, ...(args.dependsOn ?? [])];

    this.workers = args.platform.deploy(
      {
        name: `${name}-worker`,
        role: "worker",
        instance: name,
        image: args.image,
        command: imageCommand("worker", "--concurrency", String(args.workers.concurrency), "--alive-file", JOB_PATHS.aliveFile),
        env: { ...env, ...tracingEnv(args.tracing, "shopfds-worker") },
        secretFiles: outputsFile,
        existingSecretFiles: args.contractFiles ?? [],
        // /metrics for Prometheus (the services job), /health/live.
        ports: [{ name: "metrics", port: WORKER_METRICS_PORT }],
        healthCheck: heartbeatCheck,
        resources: args.workers.resources,
        replicas: args.workers.replicas,
        // Workers keep nothing between tasks (a lost one's deliveries are redelivered): a Deployment,
        // scaled on CPU between the FR-015 minimum and three times it.
        stateless: true,
        autoscale: { maxReplicas: args.workers.replicas * 3, cpuUtilizationPercent: 70 },
        runAs: SERVICE_IMAGE_USER,
        dependsOn,
      },
      this,
    );

    // Docker's Prometheus scrapes fixed targets; on Kubernetes a ServiceMonitor selects the workers' Service.
    this.metricsTargets = args.platform.kind === "docker" ? Array.from({ length: args.workers.replicas }, (_, i) => `${this.workers.internalHost(i)}:${WORKER_METRICS_PORT}`) : [];

    this.scheduler = args.platform.deploy(
      {
        name: `${name}-scheduler`,
        role: "scheduler",
        instance: name,
        image: args.image,
        command: imageCommand("scheduler", "--alive-file", JOB_PATHS.aliveFile),
        env: { ...env, ...tracingEnv(args.tracing, "shopfds-scheduler") },
        secretFiles: outputsFile,
        existingSecretFiles: args.contractFiles ?? [],
        ports: [],
        healthCheck: heartbeatCheck,
        resources: { cpu: "50m", memory: "128Mi" },
        // One scheduler; a second one (during a rollout) is harmless: each slot fires once (a lock).
        // A StatefulSet, not a Deployment: it never starts a replacement while the old pod may still run.
        replicas: 1,
        runAs: SERVICE_IMAGE_USER,
        dependsOn,
      },
      this,
    );

    if (args.flower.enabled) {
      const uiPassword = new random.RandomPassword(`${name}-flower-ui-password`, { length: 24, special: false }, { parent: this, additionalSecretOutputs: ["result"] }).result;
      const brokerHost = args.broker.broker.internalHost(0);
      const { tls, amqpPort, managementPort } = args.broker.inside;
      if (tls && !args.brokerCaFile) throw new Error(`JobRunners ${name}: brokerCaFile: the broker takes TLS only, so Flower needs the CA that signs its certificate (got nothing)`);
      const celeryConfig = tls ? renderFlowerCeleryConfig({ caFile: args.brokerCaFile!, serverName: brokerHost }) : undefined;
      const flower = args.platform.deploy(
        {
          name: `${name}-flower`,
          role: "flower",
          instance: name,
          image: args.flower.image,
          // The image's own user (mher/flower's Dockerfile: `adduser -u 1000 … flower`, `USER flower`).
          runAs: { uid: 1000, gid: 1000 },
          // Credentials come from secret files at start, never from the command line or environment.
          entrypoint: [
            "sh",
            "-c",
            `exec celery ${celeryConfig ? `--config=${FLOWER_CELERY_CONFIG_MODULE} ` : ""}--broker="$(cat ${JOB_PATHS.flowerBroker})" flower --port=${FLOWER_PORT} --basic_auth="$(cat ${JOB_PATHS.flowerAuth})" --broker_api="$(cat ${JOB_PATHS.flowerBrokerApi})" --purge_offline_workers=300`,
          ],
          secretFiles: [
            { path: JOB_PATHS.flowerBroker, content: pulumi.interpolate`${tls ? "amqps" : "amqp"}://flower:${args.broker.flowerPassword}@${brokerHost}:${amqpPort}/${RABBIT_VHOST}` },
            { path: JOB_PATHS.flowerAuth, content: pulumi.interpolate`admin:${uiPassword}` },
            { path: JOB_PATHS.flowerBrokerApi, content: pulumi.interpolate`${tls ? "https" : "http"}://flower:${args.broker.flowerPassword}@${brokerHost}:${managementPort}/api/` },
          ],
          ...(celeryConfig
            ? {
                configFiles: [{ path: `${JOB_PATHS.flowerConfigDir}/${FLOWER_CELERY_CONFIG_MODULE}.py`, content: celeryConfig }],
                env: { PYTHONPATH: JOB_PATHS.flowerConfigDir },
                // Only the mount that holds the broker's CA.
                existingSecretFiles: (args.contractFiles ?? []).filter((f) => args.brokerCaFile!.startsWith(`${f.directory}/`)),
              }
            : {}),
          ports: [{ name: "http", port: FLOWER_PORT, hostPort: args.flower.hostPort }],
          healthCheck: {
            command: ["python", "-c", `import urllib.request; urllib.request.urlopen("http://127.0.0.1:${FLOWER_PORT}/healthcheck", timeout=3)`],
            intervalSeconds: 15,
            timeoutSeconds: 5,
            retries: 3,
            startPeriodSeconds: 30,
          },
          resources: { cpu: "100m", memory: "256Mi" },
          replicas: 1,
          // Flower keeps its view in memory and rebuilds it from the broker's events: a Deployment.
          stateless: true,
          aliases: [`${name}-flower-ui`],
          dependsOn: [args.broker.broker],
        },
        this,
      );
      // Docker publishes the instance on the host; on Kubernetes its Service is the way in.
      const [ui] = (args.platform.kind === "docker" ? flower.instanceEndpoints("http") : [flower.aliasEndpoint(`${name}-flower-ui`, "http")]) as [Endpoint];
      this.flower = { url: `http://${ui.host}:${ui.port}/`, user: "admin", password: uiPassword };
    }
    this.registerOutputs({ flowerUrl: this.flower?.url });
  }
}
