/**
 * RabbitMQ on a Kubernetes stack as a `RabbitmqCluster` of the RabbitMQ Cluster Operator: `replicas`
 * nodes (3 in prod) clustered by the operator (peer discovery, Erlang cookie, rolling upgrades that wait
 * for quorum-critical queues, the memory watermark from the container limit), the Prometheus plugin
 * scraped, and the same definitions as the Docker broker (vhost, users without guest, the task queue
 * with its dead-letter exchange and queue, the bounded DLQ policy) loaded at boot from a Secret.
 *
 * The task queue stays a classic durable queue (see README, "RabbitMQ on Kubernetes"): it lives on one
 * node and its messages on that node's volume, so a node restart or drain makes it unavailable for the
 * restart (producers defer, workers reconnect) and loses nothing; only the loss of that node's volume
 * loses the queued tasks. A quorum queue would survive that too, but Celery before 5.5 (Debian's 5.2
 * included) cannot consume one (global QoS), and our worker's eta handling relies on growing a global
 * prefetch.
 */
import * as pulumi from "@pulumi/pulumi";
import type { KubernetesPlatform } from "../platform/kubernetes";
import { doubleCpu } from "../platform/quantity";
import { resourcesToWaitFor, type DeployedService } from "../platform/types";
import { brokerListeners, RABBIT_VHOST, rabbitCredentials, type Broker, type BrokerListeners } from "./broker";
import type { IssuedCertificate } from "../platform/internal-ca";

const DEFINITIONS_DIR = "/etc/shopfds-definitions";

export interface RabbitClusterArgs {
  readonly platform: KubernetesPlatform;
  /** A RabbitMQ 3.13+ image with the management plugin, e.g. `rabbitmq:3.13.7-management`. */
  readonly image: string;
  readonly replicas: number;
  readonly storageSize: string;
  readonly resources: { readonly cpu: string; readonly memory: string };
  /** The operator's manifest: the cluster waits for its CRD. */
  readonly operator: readonly pulumi.Resource[];
  /**
   * TLS only (`spec.tls` with `disableNonTLSListeners`): the server certificate's Secret (tls.crt and
   * tls.key, which the operator requires); its names must cover the client Service `<name>`. AMQPS on
   * 5671, management on 15671 and Prometheus on 15691, nothing in plain text (the operator's
   * configmap.go and service.go at the pinned version: tests/fixtures/upstream/facts.yaml).
   */
  readonly tls?: IssuedCertificate;
}

/** rabbitmq.conf lines added to the operator's own (listeners, clustering and the watermark are its). */
export const RABBIT_CLUSTER_CONFIG = [
  `load_definitions = ${DEFINITIONS_DIR}/definitions.json`,
  "prometheus.return_per_object_metrics = true",
  "consumer_timeout = 3600000",
  "disk_free_limit.absolute = 1GB",
  "vm_memory_high_watermark.relative = 0.6",
].join("\n");

export class RabbitCluster extends pulumi.ComponentResource implements Broker {
  declare readonly url: pulumi.Output<string>;
  declare readonly internalUrl: pulumi.Output<string>;
  declare readonly managementUrl: string;
  declare readonly internalManagementUrl: string;
  declare readonly flowerPassword: pulumi.Output<string>;
  declare readonly broker: DeployedService;
  declare readonly inside: BrokerListeners;

  constructor(name: string, args: RabbitClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:jobs:RabbitCluster", name, {}, opts);
    const platform = args.platform;
    const { app, flower, definitions } = rabbitCredentials(name, this);
    const secret = platform.secret(this, `${name}-definitions`, { "definitions.json": definitions }, name);
    const cluster = platform.customResource(
      this,
      { apiVersion: "rabbitmq.com/v1beta1", kind: "RabbitmqCluster" },
      name,
      {
        replicas: args.replicas,
        image: args.image,
        resources: { requests: { cpu: args.resources.cpu, memory: args.resources.memory }, limits: { cpu: doubleCpu(args.resources.cpu), memory: args.resources.memory } },
        persistence: { storage: args.storageSize, ...(platform.storageClass ? { storageClassName: platform.storageClass } : {}) },
        rabbitmq: { additionalConfig: RABBIT_CLUSTER_CONFIG },
        ...(args.tls ? { tls: { secretName: args.tls.secretName, disableNonTLSListeners: true } } : {}),
        ...(args.replicas > 1
          ? { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: { "app.kubernetes.io/name": name } } }] } } }
          : {}),
        override: {
          statefulSet: {
            spec: {
              template: {
                spec: {
                  containers: [{ name: "rabbitmq", volumeMounts: [{ name: "shopfds-definitions", mountPath: DEFINITIONS_DIR, readOnly: true }] }],
                  volumes: [{ name: "shopfds-definitions", secret: { secretName: `${name}-definitions`, defaultMode: 0o440 } }],
                },
              },
            },
          },
        },
      },
      // The operator does not reconcile the cluster until the certificate's Secret exists (reconcile_tls.go).
      { instance: name, dependsOn: [...args.operator, secret, ...(args.tls ? [args.tls.certificate] : [])], holdsData: true },
    );
    // The operator's client Service, `<name>`, balances over the nodes (amqp, management, prometheus;
    // with TLS only: amqps, management-tls, prometheus-tls).
    const host = platform.serviceHost(name);
    const listeners = brokerListeners(args.tls !== undefined);
    const { amqpPort, managementPort } = listeners;
    const [amqp, http] = listeners.tls ? ["amqps", "https"] : ["amqp", "http"];
    const waitFor = resourcesToWaitFor(name, [cluster]);
    this.broker = {
      ...waitFor,
      internalHost: () => host,
      instanceEndpoints: (port) => [{ host, port: port === "management" ? managementPort : amqpPort }],
      aliasEndpoint: (_alias, port) => ({ host, port: port === "management" ? managementPort : amqpPort }),
    };
    this.inside = listeners;
    this.url = pulumi.secret(pulumi.interpolate`${amqp}://shopfds:${app}@${host}:${amqpPort}/${RABBIT_VHOST}`);
    this.internalUrl = this.url;
    this.managementUrl = `${http}://${host}:${managementPort}/`;
    this.internalManagementUrl = this.managementUrl;
    this.flowerPassword = flower;
    this.registerOutputs({ url: this.url, managementUrl: this.managementUrl });
  }
}
