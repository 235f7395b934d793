/**
 * The broker concern's shared terms: its users and definitions (the same on Docker and on Kubernetes)
 * and what the job runners and the stack need of a broker (Broker), whoever runs it: one node on Docker
 * (docker.ts) or the RabbitMQ cluster operator (kubernetes.ts).
 */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { DeployedService } from "../platform/types";
import { RABBIT_VHOST, renderDefinitions } from "./render";

export { RABBIT_VHOST };

/**
 * The hash salt is derived from the user and password, so the rendered definitions are the same on
 * every run (a random salt would show a change on every `pulumi preview`).
 */
const stableSalt = (passwords: Record<string, string>) => (user: string) => createHash("sha256").update(`${user}:${passwords[user]}`).digest().subarray(0, 4);

/**
 * The broker's users (the application, Flower with monitoring rights, an administrator), their
 * generated passwords, and the definitions file that creates them with the vhost, queues and policies
 * (a secret: it holds their password hashes). The same on Docker and on Kubernetes.
 */
export function rabbitCredentials(name: string, parent: pulumi.Resource): { app: pulumi.Output<string>; flower: pulumi.Output<string>; definitions: pulumi.Output<string> } {
  const password = (user: string) =>
    new random.RandomPassword(`${name}-${user}-password`, { length: 32, special: false }, { parent, additionalSecretOutputs: ["result"] }).result;
  const app = password("shopfds");
  const flower = password("flower");
  const admin = password("admin");
  const definitions = pulumi.secret(
    pulumi.all([app, flower, admin]).apply(([shopfds, flowerPw, adminPw]) =>
      renderDefinitions({
        vhost: RABBIT_VHOST,
        users: [
          { name: "shopfds", password: shopfds, tags: [] },
          { name: "flower", password: flowerPw, tags: ["monitoring"] },
          { name: "admin", password: adminPw, tags: ["administrator"] },
        ],
        salt: stableSalt({ shopfds, flower: flowerPw, admin: adminPw }),
      }),
    ),
  );
  return { app, flower, definitions };
}

/** What the job runners and the stack need of a broker, whoever runs it (this component, the RabbitMQ operator). */
export interface Broker {
  readonly url: pulumi.Output<string>;
  readonly internalUrl: pulumi.Output<string>;
  readonly managementUrl: string;
  readonly internalManagementUrl: string;
  readonly flowerPassword: pulumi.Output<string>;
  readonly broker: DeployedService;
  /** How the stack's own workloads reach it: AMQPS and HTTPS when `tls` (verified against the stack's CA). */
  readonly inside: BrokerListeners;
}

/** The broker's listeners as the stack's workloads see them. */
export interface BrokerListeners {
  readonly tls: boolean;
  readonly amqpPort: number;
  readonly managementPort: number;
  /** The Prometheus plugin's port and the name the broker's Service gives it. */
  readonly metrics: { readonly port: number; readonly name: string };
}

/** RabbitMQ's default ports, plain (5672, 15672, 15692) and TLS (5671, 15671, 15691). */
export function brokerListeners(tls: boolean): BrokerListeners {
  return tls
    ? { tls, amqpPort: 5671, managementPort: 15671, metrics: { port: 15691, name: "prometheus-tls" } }
    : { tls, amqpPort: 5672, managementPort: 15672, metrics: { port: 15692, name: "prometheus" } };
}
