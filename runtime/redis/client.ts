/**
 * The Redis Cluster client services share, built from the stack outputs: ioredis's Cluster with the
 * stack's password and its NAT map where nodes announce names only their own network resolves (Docker).
 * Commands issued together (a blacklist check's three GETs) go out at once, each on its node's socket,
 * so a check costs one round trip per node involved. Automatic pipelining is off: it batches commands
 * to the next tick, which measured 40–60 µs slower per check here for no gain at these rates.
 */
import { Cluster, type ClusterOptions } from "ioredis";
import type { RedisOutputs } from "../outputs";
import { verifiedTls } from "../tls";

export interface RedisClientOptions {
  /** Per-command timeout in ms; a hung node fails fast instead of stalling a request. @default 1000 */
  readonly commandTimeoutMs?: number;
  /** Extra ioredis cluster options (tests shorten retry delays). */
  readonly cluster?: ClusterOptions;
}

/** The periodic slot-map refresh; a timed-out command triggers one at once (refreshSlotsOnTimeout). */
export const SLOTS_REFRESH_MS = 5000;

/** ioredis's message for a command past its `commandTimeout`. */
const COMMAND_TIMED_OUT = "Command timed out";

/**
 * Re-reads the slot map whenever a command times out: it may have gone to a hung master that its
 * replica has replaced meanwhile. ioredis runs one refresh at a time, so a burst of timeouts costs one.
 * The caller still gets its rejection (this only listens to it).
 */
export function refreshSlotsOnTimeout(cluster: Cluster): void {
  const send = cluster.sendCommand.bind(cluster);
  cluster.sendCommand = ((command, stream, node) => {
    const sent = send(command, stream, node);
    command.promise.catch((error: unknown) => {
      if ((error as Error | undefined)?.message === COMMAND_TIMED_OUT) cluster.refreshSlotsCache();
    });
    return sent;
  }) as Cluster["sendCommand"];
}

export function connectRedisCluster(outputs: RedisOutputs, options: RedisClientOptions = {}): Cluster {
  // TLS only on Kubernetes: every node verified against the stack's CA (and the certificate's name).
  const tls = verifiedTls("redis.tls", outputs.tls);
  const cluster = new Cluster(
    outputs.nodes.map((n) => ({ host: n.host, port: n.port })),
    {
      enableAutoPipelining: false,
      natMap: outputs.natMap,
      // A failover takes a few seconds; retry moved or down slots briefly rather than failing at once.
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      // A *hung* master (stopped process, black-holed network) sends no MOVED and no error: only
      // timeouts. ioredis learns of a failover from redirections, so a client that only reads kept asking
      // the hung node (and falling back to PostgreSQL) until it resumed, 16–37 s after the failover. The
      // slot map is therefore re-read after every command that timed out (below; a node that does not
      // answer CLUSTER SLOTS within 300 ms is skipped for the next), which bounds that to about a second
      // for a client that keeps working, and every SLOTS_REFRESH_MS besides. It was re-read twice a
      // second: each refresh opens a connection and rebuilds the 16 384-slot map, about 30 ms of CPU,
      // and that cost a service 56 ms of CPU per second doing nothing (measured: 78 ms/s at 500 ms,
      // 22 ms/s at 5 s, an idle client on the local cluster).
      slotsRefreshInterval: SLOTS_REFRESH_MS,
      slotsRefreshTimeout: 300,
      ...options.cluster,
      redisOptions: {
        password: outputs.password,
        commandTimeout: options.commandTimeoutMs ?? 1000,
        maxRetriesPerRequest: 2,
        connectTimeout: 1000,
        ...(tls ? { tls } : {}),
        ...options.cluster?.redisOptions,
      },
    },
  );
  // Node errors are retried by ioredis and reported to callers per command; an unhandled 'error' event
  // must not crash the service.
  cluster.on("error", () => undefined);
  refreshSlotsOnTimeout(cluster);
  return cluster;
}
