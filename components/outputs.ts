/**
 * The stack-outputs contract (runtime/outputs.ts), built once for both views: "outside" (what the stack
 * exports: the addresses a developer's process or another service reaches) and "inside" (the JSON the
 * stack's own workloads read from a secret file: the addresses inside the network or cluster, and the
 * CA file Kubernetes workloads verify PostgreSQL against).
 */
import * as pulumi from "@pulumi/pulumi";
import type { StackOutputs } from "../runtime/outputs";
import type { Endpoint } from "./platform/types";
import type { PostgresDeployment } from "./postgres/database";
import type { Broker } from "./rabbitmq/broker";

/** Typed against the contract, so the program cannot export a shape the runtime would reject. */
export type Exported<T> = { [K in keyof T]: pulumi.Input<T[K]> };

export type ContractView = "inside" | "outside";

export interface ContractParts {
  readonly db: PostgresDeployment;
  /** Where inside workloads read the database's CA (Kubernetes: TLS only). */
  readonly postgresCaFile?: string;
  /** Where inside workloads read the stack's CA, which signs Redis's and RabbitMQ's certificates (Kubernetes: TLS only). */
  readonly internalCaFile?: string;
  readonly cache: { readonly nodes: Endpoint[]; readonly internalNodes: Endpoint[]; readonly password: pulumi.Output<string>; readonly natMap: Record<string, Endpoint> | undefined };
  readonly broker: Broker;
  readonly cardHashKeys: pulumi.Output<{ version: number; key: string }[]>;
  /** SMTP for each view (undefined: no e-mail). */
  readonly smtp: (view: ContractView) => pulumi.Output<NonNullable<StackOutputs["smtp"]>> | undefined;
  readonly sentry?: { readonly dsn: pulumi.Output<string>; readonly environment: NonNullable<StackOutputs["sentry"]>["environment"] };
}

export interface Contract {
  readonly postgres: Exported<StackOutputs["postgres"]>;
  readonly redis: Exported<StackOutputs["redis"]>;
  readonly fds: Exported<StackOutputs["fds"]>;
  readonly rabbitmq: Exported<StackOutputs["rabbitmq"]>;
  readonly smtp?: pulumi.Output<NonNullable<StackOutputs["smtp"]>>;
  readonly sentry?: Exported<NonNullable<StackOutputs["sentry"]>>;
}

/** The contract's parts as `view` sees them. */
export function contract(view: ContractView, p: ContractParts): Contract {
  const inside = view === "inside";
  const { db, cache, broker } = p;
  const smtp = p.smtp(view);
  return {
    postgres: {
      primary: inside ? db.internal.primary : db.primary,
      replicas: inside ? db.internal.replicas : db.replicaEndpoints,
      ...(db.replicaDiscovery ? { replicaDiscovery: db.replicaDiscovery } : {}),
      database: db.database,
      user: db.user,
      password: db.password,
      ...(inside && p.postgresCaFile ? { tls: { caFile: p.postgresCaFile } } : {}),
    },
    redis: {
      nodes: inside ? cache.internalNodes : cache.nodes,
      password: cache.password,
      ...(!inside && cache.natMap ? { natMap: cache.natMap } : {}),
      ...(inside && p.internalCaFile ? { tls: { caFile: p.internalCaFile } } : {}),
    },
    fds: { cardHashKeys: inside ? p.cardHashKeys : pulumi.secret(p.cardHashKeys) },
    rabbitmq: inside
      ? { url: broker.internalUrl, managementUrl: broker.internalManagementUrl, ...(broker.inside.tls && p.internalCaFile ? { tls: { caFile: p.internalCaFile } } : {}) }
      : { url: broker.url, managementUrl: broker.managementUrl },
    ...(smtp ? { smtp: inside ? smtp : pulumi.secret(smtp) } : {}),
    ...(p.sentry ? { sentry: { dsn: p.sentry.dsn, environment: p.sentry.environment } } : {}),
  };
}

/** The inside view as the JSON document workloads read (a secret: it holds every password). */
export function contractJson(p: ContractParts): pulumi.Output<string> {
  return pulumi.secret(pulumi.output(contract("inside", p) as pulumi.Input<object>).apply((c) => JSON.stringify(c)));
}
