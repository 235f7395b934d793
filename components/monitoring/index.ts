/**
 * The monitoring concern: Prometheus and Alertmanager for a platform, their own containers and exporters
 * on Docker, the Prometheus Operator's custom resources on Kubernetes, scraping the same workloads.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { LogStack } from "../logging/stack";
import { KubernetesPlatform } from "../platform/kubernetes";
import type { DeployedService, Endpoint, Platform } from "../platform/types";
import type { PostgresDeployment } from "../postgres/database";
import type { Broker } from "../rabbitmq/broker";
import { IMAGES } from "../versions";
import { Monitoring } from "./docker";
import { OperatorMonitoring } from "./kubernetes";
import type { AlertEmail, MonitoringStack } from "./stack";

export type { AlertEmail, MonitoringStack };

export interface MonitoringArgs {
  readonly platform: Platform;
  readonly slackWebhookUrl: pulumi.Input<string>;
  readonly slackChannel: string;
  readonly email: AlertEmail;
  readonly storageSize: string;
  readonly hostPort?: number;
  /** Docker: the provisioned Grafana's admin password (Kubernetes: the Prometheus stack's values take it). */
  readonly grafanaAdminPassword: pulumi.Input<string>;
  readonly db: PostgresDeployment;
  readonly cache: { readonly internalNodes: Endpoint[]; readonly password: pulumi.Output<string>; readonly service: DeployedService; readonly tlsSecretName?: string | undefined };
  /** Kubernetes with TLS inside: the Secret of the stack's CA (its `ca.crt` verifies the broker's metrics port). */
  readonly internalCaSecretName?: string;
  readonly broker: Broker;
  /** The reference service and the workers: what Prometheus scrapes of ShopFDS's own processes. */
  readonly service?: { readonly service: DeployedService; readonly metricsTargets: string[] };
  readonly workers: { readonly workers: DeployedService; readonly metricsTargets: string[] };
  readonly logging?: LogStack;
  /** Kubernetes: the Prometheus Operator's release. */
  readonly operator?: readonly pulumi.Resource[];
}

const requireCa = (secretName: string | undefined): string => {
  if (!secretName) throw new Error("monitoring: internalCaSecretName: the broker takes TLS only, so Prometheus needs the CA that signs its certificate (got nothing)");
  return secretName;
};

export function declareMonitoring(name: string, args: MonitoringArgs): MonitoringStack {
  const { platform, slackWebhookUrl, slackChannel, email, db, cache, broker, service, workers, logging } = args;
  if (platform instanceof KubernetesPlatform) {
    return new OperatorMonitoring(name, {
      platform,
      slackWebhookUrl,
      slackChannel,
      email,
      redis: { nodes: cache.internalNodes, password: cache.password, exporterImage: IMAGES.redisExporter, ...(cache.tlsSecretName ? { tls: { caSecretName: cache.tlsSecretName } } : {}) },
      scraped: [
        ...(service ? [{ service: service.service.name, port: "http", job: "shopfds-services" }] : []),
        { service: workers.workers.name, port: "metrics", job: "shopfds-services" },
        {
          service: broker.broker.name,
          port: broker.inside.metrics.name,
          job: "rabbitmq",
          ...(broker.inside.tls ? { tls: { caSecretName: requireCa(args.internalCaSecretName), serverName: broker.broker.internalHost(0) } } : {}),
        },
        ...(logging?.exporterService ? [{ service: logging.exporterService, port: "metrics", job: "elasticsearch" }] : []),
      ],
      operator: args.operator ?? [],
      dependsOn: [cache.service],
    });
  }
  return new Monitoring(name, {
    platform,
    images: { prometheus: IMAGES.prometheus, alertmanager: IMAGES.alertmanager, nodeExporter: IMAGES.nodeExporter, postgresExporter: IMAGES.postgresExporter, redisExporter: IMAGES.redisExporter, grafana: IMAGES.grafana },
    grafanaAdminPassword: args.grafanaAdminPassword,
    storageSize: args.storageSize,
    slackWebhookUrl,
    slackChannel,
    email,
    postgres: { primary: db.internal.primary, database: db.database, user: db.user, password: db.password },
    redis: { nodes: cache.internalNodes, password: cache.password },
    rabbitmqMetrics: `${broker.broker.internalHost(0)}:15692`,
    serviceTargets: [...(service?.metricsTargets ?? []), ...workers.metricsTargets],
    ...(logging?.exporterSource ? { elasticsearch: { url: logging.exporterSource.url, password: logging.exporterSource.password, image: IMAGES.elasticsearchExporter } } : {}),
    hostPort: args.hostPort,
    dependsOn: [...db.services, cache.service],
  });
}
