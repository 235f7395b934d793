/** Options of the read/write-routing database client, with their defaults and validation. */
import { z } from "zod";
import { endpointSchema, PostgresOutputs } from "../outputs";
import { ConfigurationError } from "../errors";

export interface DatabaseOptions {
  /** Where writes (and reads that must be fresh) go. */
  readonly primary: { host: string; port: number };
  /**
   * Streaming replicas that serve provably read-only statements. At least one. With `replicaDiscovery`,
   * the fallback used while the discovery name lists no replica (a load-balanced name such as `-ro`).
   */
  readonly replicas: readonly { host: string; port: number }[];
  /**
   * Find the replicas by DNS: a name with one address per replica, resolved again every `intervalMs`
   * (runtime/db/discovery.ts), each address a pool of its own whose lag is measured on that server.
   */
  readonly replicaDiscovery?: {
    readonly host: string;
    readonly port: number;
    /** The name the replicas' TLS certificate carries; verified instead of the pod's address. */
    readonly serverName?: string;
    /** @default 5000 (CoreDNS's kubernetes plugin answers with a 5 s TTL) */
    readonly intervalMs?: number;
    /** DNS servers (`ip` or `ip:port`) to ask instead of /etc/resolv.conf's. */
    readonly dnsServers?: readonly string[];
  };
  readonly database: string;
  readonly user: string;
  readonly password: string;
  /** Verified TLS with this CA (runtime/db/tls.ts); plain connections when absent. */
  readonly tls?: { readonly caFile: string };
  /** A replica lagging more than this is skipped until it catches up. @default 10000 */
  readonly maxLagMs?: number;
  /** How often each replica's replay position is compared with the primary's. @default 1000 */
  readonly lagCheckIntervalMs?: number;
  /** How often a replica taken out of rotation is probed. @default 1000 */
  readonly probeIntervalMs?: number;
  /** Connect timeout; a replica slower than this counts as down. @default 2000 */
  readonly connectTimeoutMs?: number;
  /**
   * A replica read with no answer within this is abandoned (its connection dropped) and retried on
   * another replica or the primary: a hung replica (process stopped, network black hole: TCP open, no
   * reply) costs a read at most this plus one primary read. Reads that may legitimately run longer
   * belong on the primary (`target: "primary"`) or need a larger value. @default 2000
   */
  readonly replicaReadTimeoutMs?: number;
  /** TCP keepalive on every connection, so a peer that vanished is noticed by the kernel too. @default 10000 */
  readonly keepAliveInitialDelayMs?: number;
  /** Connections per pool (one pool per server). @default 10 */
  readonly poolSize?: number;
  /** Functions (lower-case) vetted as side-effect free, so statements calling them may go to replicas. @default none */
  readonly readOnlyFunctions?: readonly string[];
}

export const DEFAULT_OPTIONS = {
  maxLagMs: 10_000,
  lagCheckIntervalMs: 1_000,
  probeIntervalMs: 1_000,
  connectTimeoutMs: 2_000,
  replicaReadTimeoutMs: 2_000,
  keepAliveInitialDelayMs: 10_000,
  poolSize: 10,
  discoveryIntervalMs: 5_000,
  readOnlyFunctions: [] as readonly string[],
} as const;

const positiveMs = z.number().int("must be an integer").positive("must be a positive number of milliseconds");
const schema = z
  .object({
    primary: endpointSchema,
    replicas: z.array(endpointSchema).min(1, "must list at least one replica"),
    database: z.string().min(1, "must not be empty"),
    user: z.string().min(1, "must not be empty"),
    password: z.string().min(1, "must not be empty"),
    tls: z.object({ caFile: z.string().min(1, "must not be empty") }).strict().optional(),
    replicaDiscovery: z
      .object({
        host: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/, "must be a DNS name"),
        port: endpointSchema.shape.port,
        serverName: z.string().min(1, "must not be empty").optional(),
        intervalMs: z.number().int("must be an integer").min(100, "must be at least 100 ms").default(DEFAULT_OPTIONS.discoveryIntervalMs),
        dnsServers: z.array(z.string().min(1, "must not be empty")).optional(),
      })
      .strict()
      .optional(),
    maxLagMs: positiveMs.default(DEFAULT_OPTIONS.maxLagMs),
    lagCheckIntervalMs: positiveMs.default(DEFAULT_OPTIONS.lagCheckIntervalMs),
    probeIntervalMs: positiveMs.default(DEFAULT_OPTIONS.probeIntervalMs),
    connectTimeoutMs: positiveMs.default(DEFAULT_OPTIONS.connectTimeoutMs),
    replicaReadTimeoutMs: positiveMs.default(DEFAULT_OPTIONS.replicaReadTimeoutMs),
    keepAliveInitialDelayMs: positiveMs.default(DEFAULT_OPTIONS.keepAliveInitialDelayMs),
    poolSize: z.number().int().min(1, "must be at least 1").max(1000).default(DEFAULT_OPTIONS.poolSize),
    readOnlyFunctions: z.array(z.string().regex(/^[a-z_][a-z0-9_]*$/, "must be a lower-case function name")).default([...DEFAULT_OPTIONS.readOnlyFunctions]),
  })
  .strict();

export type ResolvedOptions = z.output<typeof schema>;

export class DatabaseOptionsError extends ConfigurationError {
  constructor(problems: readonly string[]) {
    super(`invalid database options:\n  - ${problems.join("\n  - ")}`, problems);
  }
}

/** Validates options (naming each bad field, never echoing the password) and applies defaults. */
export function resolveOptions(options: DatabaseOptions | PostgresOutputs): ResolvedOptions {
  const result = schema.safeParse(options);
  if (!result.success) {
    throw new DatabaseOptionsError(
      result.error.issues.map((i) => {
        const field = i.path.map(String).join(".") || "(options)";
        if (i.code === "unrecognized_keys") return `${field}: unknown option${i.keys.length > 1 ? "s" : ""} ${i.keys.join(", ")}`;
        return `${field}: ${i.message}`;
      }),
    );
  }
  return result.data;
}
