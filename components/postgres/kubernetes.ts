/**
 * PostgreSQL on Kubernetes as a CloudNativePG `Cluster`: one primary and `replicas` streaming replicas
 * with automatic failover, TLS (the operator's CA), WAL archiving and a daily base backup to an S3
 * bucket, point-in-time recovery from it, a PodMonitor, and required anti-affinity across nodes. The
 * operator owns what the Docker stack's renderers do by hand (initdb, pg_hba, replication slots,
 * pg_basebackup, PGDATA permissions), so none of that is declared here.
 *
 * Outputs: the `-rw` Service is the primary. Replicas are found per pod: a headless Service over the
 * operator's replica pods (selected by the labels CloudNativePG puts on them, REPLICA_POD_LABELS) gives
 * one DNS address per ready replica, which the router resolves again and again (`replicaDiscovery`), so
 * its lag check and its reads go to the same server; the `-ro` Service, which balances over every
 * replica, is only the fallback while that name lists none. TLS to a pod address is verified against
 * the `-ro` name, which the operator's one server certificate carries for every instance.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { KubernetesPlatform } from "../platform/kubernetes";
import type { DeployedService, Endpoint } from "../platform/types";
import type { PostgresDeployment, PostgresSettings } from "./database";

const PORT = 5432;

/**
 * The labels CloudNativePG sets on a replica's pod (and moves on failover), which its own `-ro` Service
 * selects: tests/fixtures/upstream records where they were read (cloudnative-pg v1.30.0).
 */
export const REPLICA_POD_LABELS = (cluster: string) => ({ "cnpg.io/cluster": cluster, "cnpg.io/instanceRole": "replica" });

export interface CnpgBackupArgs {
  readonly destinationPath: string;
  readonly endpointUrl?: string;
  readonly serverName?: string;
  readonly retention: string;
  readonly schedule: string;
  readonly accessKeyId: pulumi.Input<string>;
  readonly secretAccessKey: pulumi.Input<string>;
}

export interface CnpgPostgresArgs extends PostgresSettings {
  readonly platform: KubernetesPlatform;
  /** Undefined: no backups (a throw-away cluster). */
  readonly backup?: CnpgBackupArgs;
  /** Bootstrap from another cluster's backups (needs `backup` for the object store's address and keys). */
  readonly restore?: { readonly fromServerName: string; readonly targetTime?: string };
  /** The operator's Helm release: the Cluster waits for its CRDs and webhook. */
  readonly dependsOn?: readonly pulumi.Resource[];
}

/**
 * The pg_hba rules the cluster adds before CloudNativePG's own final `host all all all scram-sha-256`:
 * a connection without TLS is refused before any password is exchanged.
 */
export const TLS_ONLY_HBA = ["hostnossl all all 0.0.0.0/0 reject", "hostnossl all all ::/0 reject"] as const;

/** The keys CloudNativePG reads from the object-store credentials Secret. */
const S3_KEYS = { id: "ACCESS_KEY_ID", secret: "ACCESS_SECRET_KEY" } as const;

export class CnpgPostgres extends pulumi.ComponentResource implements PostgresDeployment {
  declare readonly primary: Endpoint;
  declare readonly replicaEndpoints: Endpoint[];
  declare readonly internal: { readonly primary: Endpoint; readonly replicas: Endpoint[] };
  /** The headless Service's name (one address per ready replica pod), for the router's discovery. */
  declare readonly replicaDiscovery: { readonly host: string; readonly port: number; readonly serverName: string };
  declare readonly replicaService: k8s.core.v1.Service;
  declare readonly services: DeployedService[];
  declare readonly database: string;
  declare readonly user: string;
  declare readonly password: pulumi.Output<string>;
  /** The Secret (key `ca.crt`) holding the CA that signs the server's certificate; the operator creates it. */
  declare readonly caSecretName: string;
  declare readonly cluster: k8s.apiextensions.CustomResource;
  declare readonly scheduledBackup: k8s.apiextensions.CustomResource | undefined;

  constructor(name: string, args: CnpgPostgresArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:database:CnpgPostgres", name, {}, opts);
    const platform = args.platform;
    const ns = platform.namespaceName;
    const objectOpts = (holdsData = false, dependsOn: readonly pulumi.Resource[] = []) => platform.objectOptions(this, dependsOn, holdsData);
    const labels = { "app.kubernetes.io/instance": name, "app.kubernetes.io/part-of": "shopfds" };

    const appPassword = new random.RandomPassword(`${name}-app-password`, { length: 32, special: false }, { parent: this, additionalSecretOutputs: ["result"] }).result;
    // The application role's credentials, in the form initdb's `secret` takes (kubernetes.io/basic-auth).
    const appSecret = new k8s.core.v1.Secret(
      `${name}-app-credentials`,
      {
        metadata: { name: `${name}-app-credentials`, namespace: ns, labels: { ...labels, "cnpg.io/reload": "true" } },
        type: "kubernetes.io/basic-auth",
        stringData: { username: args.user, password: pulumi.secret(appPassword) },
      },
      objectOpts(),
    );

    const backup = args.backup;
    const s3Secret = backup ? platform.secret(this, `${name}-backup-credentials`, { [S3_KEYS.id]: backup.accessKeyId, [S3_KEYS.secret]: backup.secretAccessKey }, name) : undefined;
    const objectStore = (serverName: string) =>
      backup && s3Secret
        ? {
            destinationPath: backup.destinationPath,
            ...(backup.endpointUrl ? { endpointURL: backup.endpointUrl } : {}),
            serverName,
            s3Credentials: {
              accessKeyId: { name: s3Secret.metadata.name, key: S3_KEYS.id },
              secretAccessKey: { name: s3Secret.metadata.name, key: S3_KEYS.secret },
            },
            wal: { compression: "gzip", maxParallel: 2 },
            data: { compression: "gzip" },
          }
        : undefined;

    if (args.restore && !backup) throw new Error(`CnpgPostgres ${name}: restore needs the backup settings (the object store to recover from)`);
    const bootstrap = args.restore
      ? {
          recovery: {
            source: "origin",
            database: args.database,
            owner: args.user,
            secret: { name: appSecret.metadata.name },
            ...(args.restore.targetTime ? { recoveryTarget: { targetTime: args.restore.targetTime } } : {}),
          },
        }
      : { initdb: { database: args.database, owner: args.user, secret: { name: appSecret.metadata.name }, dataChecksums: true } };

    const clusterName = name;
    this.cluster = platform.customResource(
      this,
      { apiVersion: "postgresql.cnpg.io/v1", kind: "Cluster" },
      clusterName,
      {
        instances: 1 + args.replicas,
        imageName: args.image,
        // Failover promotes the most advanced replica; PDBs keep a drain from taking the primary and a replica together.
        enablePDB: true,
        enableSuperuserAccess: false,
        primaryUpdateStrategy: "unsupervised",
        postgresql: {
          parameters: {
            max_connections: String(args.maxConnections),
            shared_buffers: args.sharedBuffers,
            max_slot_wal_keep_size: args.maxSlotWalKeepSize,
            log_min_duration_statement: "1000",
          },
          pg_hba: [...TLS_ONLY_HBA],
        },
        bootstrap,
        ...(args.restore ? { externalClusters: [{ name: "origin", barmanObjectStore: objectStore(args.restore.fromServerName) }] } : {}),
        storage: { size: args.storageSize, ...(platform.storageClass ? { storageClass: platform.storageClass } : {}) },
        resources: { requests: { cpu: args.resources.cpu, memory: args.resources.memory }, limits: { memory: args.resources.memory } },
        affinity: { enablePodAntiAffinity: true, podAntiAffinityType: "required", topologyKey: "kubernetes.io/hostname" },
        monitoring: { enablePodMonitor: true },
        ...(backup ? { backup: { retentionPolicy: backup.retention, barmanObjectStore: objectStore(backup.serverName ?? clusterName) } } : {}),
      },
      { instance: name, dependsOn: [appSecret, ...(s3Secret ? [s3Secret] : []), ...(args.dependsOn ?? [])], holdsData: true },
    );

    this.scheduledBackup = backup
      ? platform.customResource(
          this,
          { apiVersion: "postgresql.cnpg.io/v1", kind: "ScheduledBackup" },
          `${name}-daily`,
          { schedule: backup.schedule, cluster: { name: clusterName }, method: "barmanObjectStore", backupOwnerReference: "self", immediate: true },
          { instance: name, dependsOn: [this.cluster] },
        )
      : undefined;

    const rw = { host: platform.serviceHost(`${clusterName}-rw`), port: PORT };
    const ro = { host: platform.serviceHost(`${clusterName}-ro`), port: PORT };
    this.primary = rw;
    this.replicaEndpoints = [ro];
    this.internal = { primary: rw, replicas: [ro] };
    // Only ready replicas are listed (publishNotReadyAddresses false): a replica still catching up or
    // failing its probe is not offered to the router at all.
    const replicasName = `${clusterName}-replicas`;
    this.replicaService = platform.service(
      this,
      replicasName,
      { clusterIP: "None", publishNotReadyAddresses: false, selector: REPLICA_POD_LABELS(clusterName), ports: [{ name: "postgres", port: PORT, targetPort: PORT, protocol: "TCP" }] },
      name,
      [this.cluster],
    );
    this.replicaDiscovery = { host: platform.serviceFqdn(replicasName), port: PORT, serverName: ro.host };
    this.caSecretName = `${clusterName}-ca`;
    const cluster = this.cluster;
    this.services = [
      {
        name: clusterName,
        resources: [cluster],
        instanceEndpoints: () => [rw],
        internalHost: () => rw.host,
        aliasEndpoint: (alias) => {
          if (alias === "rw") return rw;
          if (alias === "ro") return ro;
          throw new Error(`CnpgPostgres ${name} has no alias "${alias}" (rw, ro)`);
        },
      },
    ];
    this.database = args.database;
    this.user = args.user;
    this.password = pulumi.secret(appPassword);
    this.registerOutputs({ primary: rw, replicaEndpoints: [ro], replicaDiscovery: this.replicaDiscovery, database: args.database, user: args.user, password: this.password });
  }
}
