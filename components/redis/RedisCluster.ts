/**
 * A 6-node Redis Cluster (3 masters, 3 replicas) on whichever platform the stack targets: password
 * auth from @pulumi/random, an explicit cluster bus port, nodes that announce stable host names (so a
 * new container or pod IP does not strand clients), and a one-shot job that forms the cluster once the
 * nodes are up and does nothing on later runs.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DeployedService, Endpoint, Platform, resourcesToWaitFor, ServiceSpec } from "../platform/types";
import { REDIS_NODE_COUNT, renderClusterCreateScript, renderNodeStartScript, renderRedisAuthInclude, renderRedisConf } from "./render";

export { REDIS_NODE_COUNT };

/** Paths inside the redis image. */
export const REDIS_PATHS = {
  config: "/etc/redis/redis.conf",
  createScript: "/etc/redis/cluster-create.sh",
  startScript: "/etc/redis/start.sh",
  authInclude: "/run/secrets/redis-auth.conf",
  password: "/run/secrets/redis-password",
  data: "/data",
  /** Kubernetes with TLS: the node's certificate Secret (tls.crt, tls.key, ca.crt) as a directory. */
  tls: "/run/secrets/redis-tls",
} as const;

export const REDIS_PORT = 6379;
export const REDIS_BUS_PORT = 16379;
/** The redis image's `redis` user. */
const REDIS_UID = 999;

export interface RedisClusterArgs {
  /** Where the nodes run. */
  readonly platform: Platform;
  /** Image with Redis ≥ 7.0 (announced host names), redis-cli and getent, e.g. `redis:7.0.15-bookworm`. */
  readonly image: string;
  /** maxmemory of each node, e.g. `256mb` (policy noeviction). */
  readonly maxMemory: string;
  /** cluster-node-timeout in ms; failover takes about 1.7 × it + 0.7 s. */
  readonly nodeTimeoutMs: number;
  /** Size of each node's data volume (AOF, nodes.conf), e.g. `1Gi`. */
  readonly storageSize: string;
  /** CPU and memory requested by each node. */
  readonly resources: { readonly cpu: string; readonly memory: string };
  /** Docker only: node `i` is published on 127.0.0.1:`hostPort + i`. */
  readonly hostPort?: number;
  /**
   * Kubernetes only: TLS only, with the server certificate cert-manager keeps in this Secret (tls.crt,
   * tls.key, and ca.crt: the CA every node and client verifies against). Its names must cover every
   * node's announced name (`*.<name>-node.<namespace>.svc.<domain>`).
   */
  readonly tls?: { readonly secretName: string; readonly certificate: pulumi.Resource };
}

export class RedisCluster extends pulumi.ComponentResource {
  /** Where callers of the stack reach each node. */
  declare readonly nodes: Endpoint[];
  declare readonly password: pulumi.Output<string>;
  /** Announced `host:port` → reachable endpoint, when the nodes announce names callers cannot resolve. */
  declare readonly natMap: Record<string, Endpoint> | undefined;
  /** The cluster-creation job; workloads that use Redis depend on it. */
  declare readonly ready: pulumi.Resource;
  /** The nodes as seen from inside the network / cluster (for workloads of the stack). */
  declare readonly internalNodes: Endpoint[];
  /** The node service plus the creation job, for dependants to wait on. */
  declare readonly service: DeployedService;
  /** With TLS: the Secret whose `ca.crt` verifies the nodes (the exporter mounts it). */
  declare readonly tlsSecretName: string | undefined;

  constructor(name: string, args: RedisClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:cache:RedisCluster", name, {}, opts);
    if (args.tls && args.platform.kind !== "kubernetes") throw new Error(`${name}: tls: the Docker stack runs Redis without TLS (one host's network); TLS is for Kubernetes stacks`);
    const password = new random.RandomPassword(`${name}-password`, { length: 32, special: false }, { parent: this, additionalSecretOutputs: ["result"] }).result;

    const tlsDir = REDIS_PATHS.tls;
    const tls = args.tls ? { certFile: `${tlsDir}/tls.crt`, keyFile: `${tlsDir}/tls.key`, caFile: `${tlsDir}/ca.crt` } : undefined;
    const cli = tls ? `redis-cli --tls --cacert ${tls.caFile}` : "redis-cli";
    const conf = renderRedisConf({
      port: REDIS_PORT,
      clusterPort: REDIS_BUS_PORT,
      nodeTimeoutMs: args.nodeTimeoutMs,
      dataDir: REDIS_PATHS.data,
      maxMemory: args.maxMemory,
      authIncludeFile: REDIS_PATHS.authInclude,
      announceHostnames: true,
      ...(tls ? { tls } : {}),
    });
    const secretFiles = [
      { path: REDIS_PATHS.authInclude, content: pulumi.secret(password.apply(renderRedisAuthInclude)) },
      { path: REDIS_PATHS.password, content: password },
    ];
    const spec: ServiceSpec = {
      name: `${name}-node`,
      role: "node",
      instance: name,
      image: args.image,
      // Each node announces its own stable name: the container name on Docker, the pod's DNS name
      // (`<pod>.<headless service>.<namespace>.svc.cluster.local`) on Kubernetes; before it starts, the
      // peers' addresses in nodes.conf are looked up again from those names, so a cluster whose nodes
      // all came back on new addresses re-forms (tests/integration/redis-restart.test.ts).
      entrypoint: ["sh", REDIS_PATHS.startScript],
      configFiles: [
        { path: REDIS_PATHS.config, content: conf },
        { path: REDIS_PATHS.startScript, content: renderNodeStartScript({ configFile: REDIS_PATHS.config, dataDir: REDIS_PATHS.data }), executable: true },
      ],
      secretFiles,
      ...(args.tls ? { existingSecretFiles: [{ secretName: args.tls.secretName, keys: ["tls.crt", "tls.key", "ca.crt"], directory: tlsDir }] } : {}),
      ports: [
        { name: "redis", port: REDIS_PORT, hostPort: args.hostPort },
        { name: "bus", port: REDIS_BUS_PORT },
      ],
      volumes: [{ name: "data", mountPath: REDIS_PATHS.data, size: args.storageSize }],
      healthCheck: {
        command: ["sh", "-c", `REDISCLI_AUTH="$(cat ${REDIS_PATHS.password})" ${cli} -p ${REDIS_PORT} ping | grep -q PONG`],
        intervalSeconds: 5,
        timeoutSeconds: 3,
        retries: 3,
        // A restarted node answers LOADING (not PONG) until its AOF is read back: allow for a full one.
        startPeriodSeconds: redisStartSeconds(args.maxMemory),
      },
      resources: args.resources,
      replicas: REDIS_NODE_COUNT,
      runAs: { uid: REDIS_UID, gid: REDIS_UID },
      // The pods mount the certificate's Secret: it must exist first.
      ...(args.tls ? { dependsOn: [resourcesToWaitFor(args.tls.secretName, [args.tls.certificate])] } : {}),
    };
    const nodes: DeployedService = args.platform.deploy(spec, this);
    const internal = Array.from({ length: REDIS_NODE_COUNT }, (_, i) => ({ host: nodes.internalHost(i), port: REDIS_PORT }));

    this.ready = args.platform.runOnce(
      {
        name: `${name}-create`,
        role: "cluster-create",
        instance: name,
        image: args.image,
        command: ["sh", REDIS_PATHS.createScript],
        configFiles: [
          { path: REDIS_PATHS.createScript, content: renderClusterCreateScript({ nodes: internal, replicasPerMaster: 1, passwordFile: REDIS_PATHS.password, waitSeconds: 120, ...(tls ? { tlsCaFile: tls.caFile } : {}) }), executable: true },
        ],
        secretFiles: [{ path: REDIS_PATHS.password, content: password }],
        ...(args.tls ? { existingSecretFiles: [{ secretName: args.tls.secretName, keys: ["ca.crt"], directory: tlsDir }] } : {}),
        resources: { cpu: "50m", memory: "64Mi" },
        runAs: { uid: REDIS_UID, gid: REDIS_UID },
        dependsOn: [nodes],
      },
      this,
    );

    this.nodes = nodes.instanceEndpoints("redis");
    this.internalNodes = internal;
    const ready = this.ready;
    this.service = { ...nodes, resources: [...nodes.resources, ready] };
    this.password = password;
    this.tlsSecretName = args.tls?.secretName;
    const reachable = this.nodes.some((n, i) => n.host !== internal[i]!.host || n.port !== internal[i]!.port);
    this.natMap = reachable ? Object.fromEntries(internal.map((n, i) => [`${n.host}:${n.port}`, this.nodes[i]!])) : undefined;
    this.registerOutputs({ nodes: this.nodes, password: this.password, natMap: this.natMap });
  }
}

/**
 * Seconds a node may take to start: 10, plus reading back an AOF as large as `maxmemory` at 50 MB/s
 * (a conservative rate for a network disk), e.g. 51 s for 2gb.
 */
export function redisStartSeconds(maxMemory: string): number {
  const m = /^(\d+)(kb|mb|gb)$/.exec(maxMemory);
  if (!m) throw new Error(`redis maxMemory ${JSON.stringify(maxMemory)}: expected a size such as 256mb`);
  const mb = Number(m[1]) * { kb: 1 / 1024, mb: 1, gb: 1024 }[m[2] as "kb" | "mb" | "gb"];
  return 10 + Math.ceil(mb / 50);
}
