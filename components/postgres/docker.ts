/**
 * A PostgreSQL primary and its streaming replicas, on whichever platform the stack targets.
 * Replication runs through a dedicated REPLICATION role (no superuser), one physical slot per replica,
 * SCRAM-SHA-256 everywhere; replicas are cloned with pg_basebackup and serve hot-standby reads.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DeployedService, Endpoint, Platform, ServiceSpec } from "../platform/types";
import type { PostgresDeployment, PostgresSettings } from "./database";
import { DEFAULT_REPLICATION_USER, renderPgHba, renderPostgresConf, renderPrimaryInitSql, renderReplicaBootstrap } from "./render";

/** Paths inside the postgres image. */
export const POSTGRES_PATHS = {
  config: "/etc/postgresql/postgresql.conf",
  hba: "/etc/postgresql/pg_hba.conf",
  replicaBootstrap: "/etc/postgresql/replica-bootstrap.sh",
  primaryInit: "/docker-entrypoint-initdb.d/10-shopfds-roles.sql",
  socketDir: "/var/run/postgresql",
  dataVolume: "/var/lib/postgresql/data",
  pgdata: "/var/lib/postgresql/data/pgdata",
  superuserPassword: "/run/secrets/postgres-superuser-password",
  appPassword: "/run/secrets/postgres-app-password",
  replicationPassword: "/run/secrets/postgres-replication-password",
} as const;

/** The postgres image's `postgres` user. */
const POSTGRES_UID = 999;
const CONTAINER_PORT = 5432;

export interface PostgresReplicatedPairArgs extends PostgresSettings {
  /** Where the services run. */
  readonly platform: Platform;
  /** Docker only: host port of the primary on 127.0.0.1; replicas take the following ports. */
  readonly hostPort?: number;
}

export type { PostgresSettings };

export class PostgresReplicatedPair extends pulumi.ComponentResource implements PostgresDeployment {
  /** Read-write endpoint (the primary). */
  declare readonly primary: Endpoint;
  /** One endpoint per replica, for per-replica health and lag-aware routing. */
  declare readonly replicaEndpoints: Endpoint[];
  /** Read-only endpoint balancing over all replicas (a Kubernetes Service; on Docker a network alias). */
  declare readonly readOnly: Endpoint;
  /** The same servers as seen from inside the network / cluster (for workloads of the stack). */
  declare readonly internal: { readonly primary: Endpoint; readonly replicas: Endpoint[] };
  /** The primary and replica services, for dependants to wait on. */
  declare readonly services: DeployedService[];
  declare readonly database: string;
  declare readonly user: string;
  declare readonly password: pulumi.Output<string>;

  constructor(name: string, args: PostgresReplicatedPairArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:database:PostgresReplicatedPair", name, {}, opts);
    if (!Number.isInteger(args.replicas) || args.replicas < 1) {
      throw new Error(`PostgresReplicatedPair ${name}: replicas must be an integer ≥ 1 (got ${args.replicas})`);
    }

    const password = (purpose: string) =>
      new random.RandomPassword(`${name}-${purpose}-password`, { length: 32, special: false }, { parent: this, additionalSecretOutputs: ["result"] }).result;
    const superuserPassword = password("superuser");
    const appPassword = password("app");
    const replicationPassword = password("replication");

    const primaryName = `${name}-primary`;
    const replicaName = `${name}-replica`;
    const rwAlias = `${name}-rw`;
    const roAlias = `${name}-ro`;

    const conf = renderPostgresConf({
      port: CONTAINER_PORT,
      listenAddresses: "*",
      // cluster_name must be per instance for pg_stat_replication; on both platforms the walreceiver
      // sends the slot name (derived from the host name) as application_name instead, so one file serves all.
      clusterName: name,
      hbaFile: POSTGRES_PATHS.hba,
      unixSocketDirectory: POSTGRES_PATHS.socketDir,
      replicas: args.replicas,
      maxConnections: args.maxConnections,
      sharedBuffers: args.sharedBuffers,
      maxSlotWalKeepSize: args.maxSlotWalKeepSize,
    });
    const hba = renderPgHba({ clientCidrs: args.platform.clientCidrs, replicationUser: DEFAULT_REPLICATION_USER });

    const common = {
      instance: name,
      image: args.image,
      command: ["postgres", "-c", `config_file=${POSTGRES_PATHS.config}`],
      env: { PGDATA: POSTGRES_PATHS.pgdata },
      ports: [{ name: "postgres", port: CONTAINER_PORT }],
      volumes: [{ name: "data", mountPath: POSTGRES_PATHS.dataVolume, size: args.storageSize }],
      healthCheck: {
        command: ["pg_isready", "-q", "-h", "127.0.0.1", "-p", String(CONTAINER_PORT)],
        intervalSeconds: 5,
        timeoutSeconds: 3,
        retries: 6,
        startPeriodSeconds: 60,
      },
      resources: args.resources,
      runAs: { uid: POSTGRES_UID, gid: POSTGRES_UID },
    } satisfies Partial<ServiceSpec>;

    const primary: DeployedService = args.platform.deploy(
      {
        ...common,
        name: primaryName,
        role: "primary",
        replicas: 1,
        aliases: [rwAlias],
        ports: [{ name: "postgres", port: CONTAINER_PORT, hostPort: args.hostPort }],
        env: { ...common.env, POSTGRES_USER: "postgres", POSTGRES_PASSWORD_FILE: POSTGRES_PATHS.superuserPassword, POSTGRES_INITDB_ARGS: "--auth-host=scram-sha-256 --auth-local=scram-sha-256" },
        configFiles: [
          { path: POSTGRES_PATHS.config, content: conf },
          { path: POSTGRES_PATHS.hba, content: hba },
          {
            path: POSTGRES_PATHS.primaryInit,
            content: renderPrimaryInitSql({
              replicationUser: DEFAULT_REPLICATION_USER,
              appUser: args.user,
              database: args.database,
              replicationPasswordFile: POSTGRES_PATHS.replicationPassword,
              appPasswordFile: POSTGRES_PATHS.appPassword,
            }),
          },
        ],
        secretFiles: [
          { path: POSTGRES_PATHS.superuserPassword, content: superuserPassword },
          { path: POSTGRES_PATHS.appPassword, content: appPassword },
          { path: POSTGRES_PATHS.replicationPassword, content: replicationPassword },
        ],
      },
      this,
    );

    const replicas = args.platform.deploy(
      {
        ...common,
        name: replicaName,
        role: "replica",
        replicas: args.replicas,
        aliases: [roAlias],
        ports: [{ name: "postgres", port: CONTAINER_PORT, hostPort: args.hostPort === undefined ? undefined : args.hostPort + 1 }],
        entrypoint: ["/bin/sh", POSTGRES_PATHS.replicaBootstrap],
        configFiles: [
          { path: POSTGRES_PATHS.config, content: conf },
          { path: POSTGRES_PATHS.hba, content: hba },
          {
            path: POSTGRES_PATHS.replicaBootstrap,
            executable: true,
            content: renderReplicaBootstrap({
              primaryHost: primary.internalHost(0),
              primaryPort: CONTAINER_PORT,
              replicationUser: DEFAULT_REPLICATION_USER,
              replicationPasswordFile: POSTGRES_PATHS.replicationPassword,
              waitForPrimarySeconds: 300,
            }),
          },
        ],
        secretFiles: [{ path: POSTGRES_PATHS.replicationPassword, content: replicationPassword }],
        dependsOn: [primary],
      },
      this,
    );

    this.primary = primary.aliasEndpoint(rwAlias, "postgres");
    this.replicaEndpoints = replicas.instanceEndpoints("postgres");
    this.readOnly = replicas.aliasEndpoint(roAlias, "postgres");
    this.internal = {
      primary: { host: primary.internalHost(0), port: CONTAINER_PORT },
      replicas: Array.from({ length: args.replicas }, (_, i) => ({ host: replicas.internalHost(i), port: CONTAINER_PORT })),
    };
    this.services = [primary, replicas];
    this.database = args.database;
    this.user = args.user;
    this.password = pulumi.secret(appPassword);
    this.registerOutputs({
      primary: this.primary,
      replicaEndpoints: this.replicaEndpoints,
      readOnly: this.readOnly,
      database: this.database,
      user: this.user,
      password: this.password,
    });
  }
}
