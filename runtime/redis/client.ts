/**
 * The Redis Cluster client services share, built from the stack outputs: ioredis's Cluster with the
 * stack's password and its NAT map where nodes announce names only their own network resolves (Docker).
 * Commands issued together (a blacklist check's three GETs) go out at once, each on its node's socket,
 * so a check costs one round trip per node involved. Automatic pipelining is off: it batches commands
 * to the next tick, which measured 40–60 µs slower per check here for no gain at these rates.
 */
import { Cluster, type ClusterOptions } from "ioredis";
import type { RedisOutputs } from "../outputs";

export interface RedisClientOptions {
  /** Per-command timeout in ms; a hung node fails fast instead of stalling a request. @default 1000 */
  readonly commandTimeoutMs?: number;
  /** Extra ioredis cluster options (tests shorten retry delays). */
  readonly cluster?: ClusterOptions;
}

export function connectRedisCluster(outputs: RedisOutputs, options: RedisClientOptions = {}): Cluster {
  const cluster = new Cluster(
    outputs.nodes.map((n) => ({ host: n.host, port: n.port })),
    {
      enableAutoPipelining: false,
      natMap: outputs.natMap,
      // A failover takes a few seconds; retry moved or down slots briefly rather than failing at once.
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      // A *hung* master (stopped process, black-holed network) sends no MOVED and no error: only
      // timeouts. ioredis learns of a failover from redirections, so without a periodic refresh a client
      // that only reads kept asking the hung node (and falling back to PostgreSQL) until it resumed,
      // 16–37 s after the failover. Refreshing the slot map periodically (CLUSTER SLOTS from one node, twice a second;
      // a node that does not answer within 300 ms is skipped for the next) bounds that to about a second.
      slotsRefreshInterval: 500,
      slotsRefreshTimeout: 300,
      ...options.cluster,
      redisOptions: {
        password: outputs.password,
        commandTimeout: options.commandTimeoutMs ?? 1000,
        maxRetriesPerRequest: 2,
        connectTimeout: 1000,
        ...options.cluster?.redisOptions,
      },
    },
  );
  // Node errors are retried by ioredis and reported to callers per command; an unhandled 'error' event
  // must not crash the service.
  cluster.on("error", () => undefined);
  return cluster;
}
