/** The broker concern: "the broker" for a platform, one node on Docker or the RabbitMQ cluster operator on Kubernetes. */
import type * as pulumi from "@pulumi/pulumi";
import { KubernetesPlatform } from "../platform/kubernetes";
import type { Platform } from "../platform/types";
import type { Broker } from "./broker";
import type { IssuedCertificate } from "../platform/internal-ca";
import { RabbitMq } from "./docker";
import { RabbitCluster } from "./kubernetes";

export type { Broker };

export interface BrokerArgs {
  readonly platform: Platform;
  readonly image: string;
  /** Kubernetes: cluster members (Docker runs one node). @default 3 */
  readonly replicas?: number;
  readonly storageSize: string;
  readonly resources: { readonly cpu: string; readonly memory: string };
  /** Docker: AMQP on 127.0.0.1:hostPort, management on hostPort + 1. */
  readonly hostPort?: number;
  /** Kubernetes: the operator's manifest. */
  readonly operator?: readonly pulumi.Resource[];
  /** Kubernetes: TLS only, with this server certificate (RabbitClusterArgs.tls). */
  readonly tls?: IssuedCertificate;
}

export function declareBroker(name: string, args: BrokerArgs): Broker {
  const { platform, image, storageSize, resources } = args;
  if (args.tls && !(platform instanceof KubernetesPlatform)) throw new Error(`${name}: tls: the Docker stack runs RabbitMQ without TLS (one host's network); TLS is for Kubernetes stacks`);
  return platform instanceof KubernetesPlatform
    ? new RabbitCluster(name, { platform, image, replicas: args.replicas ?? 3, storageSize, resources, operator: args.operator ?? [], ...(args.tls ? { tls: args.tls } : {}) })
    : new RabbitMq(name, { platform, image, storageSize, resources, hostPort: args.hostPort });
}
