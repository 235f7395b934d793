/**
 * The ShopFDS stack. Reads the stack configuration once (components/config.ts), picks the platform
 * backend, wires the components, and exports the stack outputs in the shape of the runtime's contract
 * (runtime/outputs.ts), which the services read.
 */
import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig, PROJECT } from "./components/config";
import { DockerPlatform } from "./components/platform/docker";
import { KubernetesPlatform } from "./components/platform/kubernetes";
import { Platform } from "./components/platform/types";
import { PostgresReplicatedPair } from "./components/postgres/PostgresReplicatedPair";
import type { StackOutputs } from "./runtime/outputs";

const config = new pulumi.Config(PROJECT);
const settings = parseStackConfig({
  platform: config.get("platform"),
  kubernetes: config.getObject("kubernetes"),
  postgres: config.getObject("postgres"),
});

const prefix = `shopfds-${pulumi.getStack()}`;
const platform: Platform =
  settings.platform === "docker"
    ? new DockerPlatform(prefix, { subnet: "172.28.0.0/16" })
    : new KubernetesPlatform(prefix, { namespace: settings.kubernetes!.namespace, storageClass: settings.kubernetes!.storageClass });

const pg = settings.postgres;
const db = new PostgresReplicatedPair(`${prefix}-pg`, {
  platform,
  image: pg.image,
  replicas: pg.replicas,
  database: pg.database,
  user: pg.user,
  storageSize: pg.storageSize,
  maxConnections: pg.maxConnections,
  sharedBuffers: pg.sharedBuffers,
  maxSlotWalKeepSize: pg.maxSlotWalKeepSize,
  resources: pg.resources,
  hostPort: settings.platform === "docker" ? pg.hostPort : undefined,
});

/** Typed against the contract, so the program cannot export a shape the runtime would reject. */
type Exported<T> = { [K in keyof T]: pulumi.Input<T[K]> };

export const postgres: Exported<StackOutputs["postgres"]> = {
  primary: db.primary,
  replicas: db.replicaEndpoints,
  database: db.database,
  user: db.user,
  password: db.password,
};
