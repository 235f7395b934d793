/**
 * The database concern's shared terms: what every PostgreSQL deployment is given (PostgresSettings)
 * and what the stack needs of it (PostgresDeployment), whoever runs it: the replicated pair on Docker
 * (docker.ts) or CloudNativePG on Kubernetes (kubernetes.ts). index.ts asks postgres/index.ts for "the
 * database" and gets either.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { DeployedService, Endpoint } from "../platform/types";

/** What every PostgreSQL deployment of the stack is given, whoever runs it (this pair, CloudNativePG). */
export interface PostgresSettings {
  /** The image; its kind depends on who runs it (the official image here, an operand image for the operator). */
  readonly image: string;
  /** Number of streaming replicas (≥ 1). */
  readonly replicas: number;
  /** The application database, owned by `user`. */
  readonly database: string;
  /** The application role (no superuser). */
  readonly user: string;
  /** Size of each member's data volume, e.g. `10Gi`. */
  readonly storageSize: string;
  readonly maxConnections: number;
  /** shared_buffers, e.g. `128MB`. */
  readonly sharedBuffers: string;
  /** WAL a lagging replica's slot may hold back at most, e.g. `2GB`. */
  readonly maxSlotWalKeepSize: string;
  /** CPU and memory requested by each member. */
  readonly resources: { readonly cpu: string; readonly memory: string };
}

/** What the stack and its workloads need of the database, on either platform. */
export interface PostgresDeployment {
  /** Read-write endpoint (the primary), as the stack's users reach it. */
  readonly primary: pulumi.Input<Endpoint>;
  /** One endpoint per replica (Kubernetes: the `-ro` Service). */
  readonly replicaEndpoints: pulumi.Input<Endpoint[]>;
  /** The same servers as seen from inside the network / cluster (for workloads of the stack). */
  readonly internal: { readonly primary: Endpoint; readonly replicas: Endpoint[] };
  /** The services dependants wait on. */
  readonly services: DeployedService[];
  readonly database: string;
  readonly user: string;
  readonly password: pulumi.Output<string>;
  /** Kubernetes: TLS only; workloads verify the server against the CA in this Secret (key `ca.crt`). */
  readonly caSecretName?: string;
  /** Kubernetes: a name with one address per replica pod, for the router's per-replica reads. */
  readonly replicaDiscovery?: { readonly host: string; readonly port: number; readonly serverName?: string };
}
