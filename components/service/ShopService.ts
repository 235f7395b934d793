/**
 * The reference ShopFDS service (service/bin/service.ts): the service image, N identical instances behind one
 * stable name (a Docker network alias; a Kubernetes ClusterIP Service), reading the stack outputs from a
 * secret file like the workers. Liveness is `/health/live`; Prometheus scrapes `/metrics` on each
 * instance.
 */
import * as pulumi from "@pulumi/pulumi";
import { DeployedService, Endpoint, ExistingSecretFiles, Platform, SERVICE_IMAGE_USER } from "../platform/types";
import { JOB_PATHS } from "../jobs/JobRunners";
import { imageCommand } from "./image";
import { tracingEnv, type TracingConfig } from "../config";

export const SERVICE_PORT = 8080;
/** The largest request body the service takes (service/http/app.ts MAX_BODY; tests/pulumi/prod-edge.test.ts keeps them equal). */
export const SERVICE_MAX_BODY_BYTES = 64 * 1024;

/** The service's stable name inside the stack (known before it is deployed, for the workers' links). */
export const serviceInsideUrl = (name: string) => `http://${name}-http:${SERVICE_PORT}`;

export interface ShopServiceArgs {
  readonly platform: Platform;
  readonly image: string;
  /** The stack outputs as seen from inside the network (JSON, secret). */
  readonly outputsJson: pulumi.Input<string>;
  readonly replicas: number;
  readonly resources: { readonly cpu: string; readonly memory: string };
  /** dev, staging or production: the ECS `service.environment` and the Sentry environment. */
  readonly environment: "dev" | "staging" | "production";
  /** Where its traces go (OTLP/HTTP); absent: tracing off. */
  readonly tracing?: TracingConfig;
  /** Where clients reach the service (links in answers); default: the stable name inside the stack. */
  readonly publicUrl?: string;
  /** Docker only: publish on 127.0.0.1:hostPort. */
  readonly hostPort?: number;
  /** Files the outputs contract points at that an operator creates (Kubernetes: the PostgreSQL CA). */
  readonly contractFiles?: readonly ExistingSecretFiles[];
  readonly dependsOn?: readonly DeployedService[];
}

export class ShopService extends pulumi.ComponentResource {
  declare readonly service: DeployedService;
  /** `host:port` of each instance inside the network, for Prometheus. */
  declare readonly metricsTargets: string[];
  /** Where the stack's callers reach it. */
  declare readonly url: string;

  constructor(name: string, args: ShopServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:service:ShopService", name, {}, opts);
    if (!Number.isInteger(args.replicas) || args.replicas < 1) throw new Error(`ShopService ${name}: replicas must be a positive integer (got ${args.replicas})`);
    const alias = `${name}-http`; // the Docker network alias / Kubernetes Service of that name
    const inside = serviceInsideUrl(name);
    this.service = args.platform.deploy(
      {
        name,
        role: "service",
        instance: name,
        image: args.image,
        command: imageCommand("service", "--port", String(SERVICE_PORT)),
        env: { SHOPFDS_OUTPUTS_FILE: JOB_PATHS.outputs, SHOPFDS_ENVIRONMENT: args.environment, SHOPFDS_PUBLIC_URL: args.publicUrl ?? inside, NODE_ENV: "production", ...tracingEnv(args.tracing, "shopfds-service") },
        secretFiles: [{ path: JOB_PATHS.outputs, content: pulumi.secret(args.outputsJson) }],
        existingSecretFiles: args.contractFiles ?? [],
        ports: [{ name: "http", port: SERVICE_PORT, hostPort: args.hostPort }],
        healthCheck: {
          command: ["node", "-e", `fetch("http://127.0.0.1:${SERVICE_PORT}/health/live").then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`],
          intervalSeconds: 10,
          timeoutSeconds: 5,
          retries: 3,
          startPeriodSeconds: 20,
        },
        resources: args.resources,
        replicas: args.replicas,
        // Stateless (sessions live in Redis): a Deployment scaled on CPU up to three times its replicas.
        stateless: true,
        autoscale: { maxReplicas: args.replicas * 3, cpuUtilizationPercent: 70 },
        runAs: SERVICE_IMAGE_USER,
        aliases: [alias],
        dependsOn: args.dependsOn,
      },
      this,
    );
    // Docker's Prometheus scrapes fixed targets; on Kubernetes a ServiceMonitor selects the Service.
    this.metricsTargets = args.platform.kind === "docker" ? Array.from({ length: args.replicas }, (_, i) => `${this.service.internalHost(i)}:${SERVICE_PORT}`) : [];
    const entry: Endpoint = this.service.aliasEndpoint(alias, "http");
    this.url = args.publicUrl ?? `http://${entry.host}:${entry.port}`;
    this.registerOutputs({ url: this.url });
  }
}
