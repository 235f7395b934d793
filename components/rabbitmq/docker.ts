/**
 * The RabbitMQ broker for Celery-compatible jobs: one durable node whose vhost, users (no guest),
 * queues, dead-letter exchange and queue and policies come from a definitions file rendered by a pure
 * function and loaded at boot; the management and Prometheus plugins on. Passwords come from
 * @pulumi/random, and the definitions (which hold their hashes) travel as a secret file.
 */
import * as pulumi from "@pulumi/pulumi";
import { DeployedService, Endpoint, Platform } from "../platform/types";
import { RABBIT_VHOST, renderEnabledPlugins, renderRabbitConf } from "./render";
import { brokerListeners, rabbitCredentials, type Broker, type BrokerListeners } from "./broker";

export { RABBIT_VHOST, rabbitCredentials, type Broker };

export const RABBIT_PATHS = {
  config: "/etc/rabbitmq/rabbitmq.conf",
  plugins: "/etc/rabbitmq/enabled_plugins",
  definitions: "/run/secrets/rabbitmq-definitions.json",
  data: "/var/lib/rabbitmq",
} as const;
const AMQP_PORT = 5672;
const MANAGEMENT_PORT = 15672;
const PROMETHEUS_PORT = 15692;
/** The rabbitmq image's `rabbitmq` user. */
const RABBIT_UID = 999;

export interface RabbitMqArgs {
  readonly platform: Platform;
  /** Image with RabbitMQ 3.10+ and the management plugin, e.g. `rabbitmq:3.13.7-management`. */
  readonly image: string;
  readonly storageSize: string;
  readonly resources: { readonly cpu: string; readonly memory: string };
  /** Docker only: AMQP on 127.0.0.1:hostPort, management on 127.0.0.1:hostPort + 1. */
  readonly hostPort?: number;
}

export class RabbitMq extends pulumi.ComponentResource implements Broker {
  /** amqp://shopfds:…@host:port/shopfds for the services (secret). */
  declare readonly url: pulumi.Output<string>;
  /** Same broker as seen from inside the network/cluster (for workers, scheduler, Flower). */
  declare readonly internalUrl: pulumi.Output<string>;
  declare readonly managementUrl: string;
  declare readonly internalManagementUrl: string;
  /** One host's network: plain AMQP and HTTP. */
  declare readonly inside: BrokerListeners;
  declare readonly flowerPassword: pulumi.Output<string>;
  declare readonly broker: DeployedService;

  constructor(name: string, args: RabbitMqArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:jobs:RabbitMq", name, {}, opts);
    const { app, flower, definitions } = rabbitCredentials(name, this);

    this.broker = args.platform.deploy(
      {
        name: `${name}-broker`,
        role: "broker",
        instance: name,
        image: args.image,
        configFiles: [
          { path: RABBIT_PATHS.config, content: renderRabbitConf({ amqpPort: AMQP_PORT, managementPort: MANAGEMENT_PORT, prometheusPort: PROMETHEUS_PORT, bindAddress: "0.0.0.0", definitionsFile: RABBIT_PATHS.definitions }) },
          { path: RABBIT_PATHS.plugins, content: renderEnabledPlugins() },
        ],
        secretFiles: [{ path: RABBIT_PATHS.definitions, content: definitions }],
        ports: [
          { name: "amqp", port: AMQP_PORT, hostPort: args.hostPort },
          { name: "management", port: MANAGEMENT_PORT, hostPort: args.hostPort !== undefined ? args.hostPort + 1 : undefined },
          { name: "prometheus", port: PROMETHEUS_PORT },
        ],
        volumes: [{ name: "data", mountPath: RABBIT_PATHS.data, size: args.storageSize }],
        healthCheck: { command: ["rabbitmq-diagnostics", "-q", "check_port_connectivity"], intervalSeconds: 10, timeoutSeconds: 10, retries: 6, startPeriodSeconds: 60 },
        resources: args.resources,
        replicas: 1,
        runAs: { uid: RABBIT_UID, gid: RABBIT_UID },
      },
      this,
    );

    const [amqpOut] = this.broker.instanceEndpoints("amqp") as [Endpoint];
    const [managementOut] = this.broker.instanceEndpoints("management") as [Endpoint];
    const inside = this.broker.internalHost(0);
    this.url = pulumi.secret(pulumi.interpolate`amqp://shopfds:${app}@${amqpOut.host}:${amqpOut.port}/${RABBIT_VHOST}`);
    this.internalUrl = pulumi.secret(pulumi.interpolate`amqp://shopfds:${app}@${inside}:${AMQP_PORT}/${RABBIT_VHOST}`);
    this.managementUrl = `http://${managementOut.host}:${managementOut.port}/`;
    this.internalManagementUrl = `http://${inside}:${MANAGEMENT_PORT}/`;
    this.inside = brokerListeners(false);
    this.flowerPassword = flower;
    this.registerOutputs({ url: this.url, managementUrl: this.managementUrl });
  }
}
