/**
 * A PostgreSQL client that routes provably read-only statements to healthy, caught-up replicas and
 * everything else to the primary, without a proxy:
 * - fallback: a replica failing with a connection-class error leaves rotation at once, the read is
 *   retried elsewhere (finally on the primary) so the caller sees no error, and it is probed back;
 * - lag awareness: replay positions (LSNs) are compared with the primary's, and a replica further
 *   behind than `maxLagMs` is skipped (an idle primary does not make a replica look late);
 * - read-your-writes: inside `withSession`, reads go to the primary until a replica has replayed past
 *   the session's last write; `{ fresh: true }` demands the primary for one read;
 * - discovery: with `replicaDiscovery`, the replicas are the addresses of a DNS name, resolved again on
 *   a timer (a replica added is measured, then used; one removed leaves rotation), so every lag sample
 *   and every read of a replica go to the same server.
 */
import { registerDbServer } from "../observability/trace-context";
import { pgSsl } from "./tls";
import { ReplicaResolver } from "./discovery";
import { AsyncLocalStorage } from "node:async_hooks";
import pg from "pg";
import type { PostgresOutputs } from "../outputs";
import { isReadOnlyStatement } from "./classify";
import { DatabaseOptions, resolveOptions, ResolvedOptions } from "./options";
import { isPostgresUnavailable } from "../errors";

export type Target = "auto" | "primary" | "replica";

/** One statement on `pool`, as the named prepared statement `name` when given (a new config each call: pg keeps it). */
function run<R extends pg.QueryResultRow>(pool: pg.Pool, sql: string, params: unknown[], name: string | undefined): Promise<pg.QueryResult<R>> {
  return name === undefined ? pool.query<R>(sql, params) : pool.query<R>({ name, text: sql, values: params });
}
const NO_OPTIONS: QueryOptions = {};
/** Distinct statement texts whose classification is remembered (oldest forgotten first). */
const CLASSIFY_CACHE_SIZE = 2000;

export interface QueryOptions {
  /** `auto` (default) routes by statement; `primary` and `replica` choose explicitly. */
  readonly target?: Target;
  /** Read from the primary regardless (e.g. the order confirmation right after payment). */
  readonly fresh?: boolean;
  /**
   * Run as the named prepared statement `prepare` (1–63 of `A–Z a–z 0–9 _ . -`): parsed and planned
   * once per connection instead of at every call, for a service's hot statements (half the database's
   * CPU on a primary-key read here; `npm run bench`). One name, one text: pg refuses a name reused with
   * another text. Name only statements with a fixed column list: PostgreSQL re-plans a prepared
   * statement after a migration, but one whose result columns change (`SELECT *` when a column is
   * added) fails on the connections that prepared it.
   */
  readonly prepare?: string;
}

const STATEMENT_NAME = /^[A-Za-z0-9_.-]{1,63}$/;

export interface ReplicaStats {
  readonly name: string;
  readonly healthy: boolean;
  /** How long the replica has been behind the primary's position; 0 when caught up. */
  readonly lagMs: number | undefined;
  readonly lagBytes: number | undefined;
  readonly reads: number;
}

export interface DatabaseStats {
  readonly reads: { readonly primary: number; readonly replicas: number };
  readonly writes: number;
  /** Reads that went to the primary, or to another replica, because a replica failed or none was usable. */
  readonly fallbacks: number;
  readonly replicas: readonly ReplicaStats[];
  /**
   * The primary's pool could not open a new connection (the server refused it: `too many clients`, a
   * reserved-slot or shutdown refusal, unreachable) and has not opened one since: it runs on the
   * connections it already holds. Undefined once a new connection succeeds.
   */
  readonly primaryConnectFailure?: { readonly at: number; readonly message: string; readonly code?: string };
  /** With replicaDiscovery: where the replicas in use come from, and the last resolution's problem. */
  readonly discovery?: { readonly source: "dns" | "fallback"; readonly resolutions: number; readonly lastError?: string };
  /** Each pool's connections now (`primary`, then each replica in rotation by name): what the pool-use panel shows. */
  readonly pools?: readonly { readonly name: string; readonly total: number; readonly idle: number; readonly waiting: number; readonly max: number }[];
}

/** Errors that say the server is unreachable or going away, not that the statement was wrong. */
export function isConnectionError(error: unknown): boolean {
  return isPostgresUnavailable(error);
}

const parseLsn = (lsn: string): bigint => {
  const [hi, lo] = lsn.split("/");
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
};

/** PostgreSQL's text form of an LSN (`16/B374D848`), which is also the write location's. */
const LSN_TEXT = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i;
const formatLsn = (lsn: bigint): string => `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;

/**
 * A write location as carried by a client or a task (`16/B374D848`), or undefined when it is none: a
 * value that is not one is ignored rather than refused (it cannot be ours, and the read is then as if
 * nothing was carried).
 */
export function parseWriteLocation(value: unknown): bigint | undefined {
  return typeof value === "string" && LSN_TEXT.test(value.trim()) ? parseLsn(value.trim()) : undefined;
}

export interface SessionOptions {
  /**
   * A write location from an earlier scope (a client's previous request, the request that sent a task):
   * replicas that have not replayed it are skipped, as for this scope's own writes.
   */
  readonly after?: string;
  /**
   * Each write of the scope brings back where the primary's WAL stands after it, in the same round trip
   * (the position question pipelined behind the statement on its connection, in one socket write): for a
   * scope that will answer with its write location (an HTTP request), which otherwise asks after the
   * write, a round trip of its own. A scope that seldom needs its location (a task) leaves it off: its
   * writes then cost no question until a read or writeLocation() asks one. @default false
   */
  readonly locateWrites?: boolean;
}

/** The scope `withSession` runs: where its writes (and what it was given to wait for) stand. */
export interface SessionHandle {
  /**
   * The location a later scope must read after (`16/B374D848`) to see this scope's writes and what it was
   * given, or undefined when there is nothing to wait for. After a write this asks the primary once,
   * unless the write already said where it stood (a transaction's commit, a write under locateWrites).
   */
  writeLocation(): Promise<string | undefined>;
  /** False when writeLocation() would resolve undefined (no write in the scope, no location given): nothing to ask. */
  hasLocation(): boolean;
}

interface Replica {
  readonly name: string;
  /** Discovered replicas: the address the name resolved to. */
  readonly address?: string;
  readonly pool: pg.Pool;
  healthy: boolean;
  replayLsn?: bigint;
  lagMs?: number;
  lagBytes?: number;
  reads: number;
}

interface Session {
  /** Where the primary's WAL stood after this scope's last write: replicas behind it are skipped. */
  minLsn?: bigint;
  /** A write happened since minLsn was read: the next read asks the primary first (a write-only scope never asks). */
  wrote?: boolean;
  /** That question, while it is out: concurrent reads of the scope wait for the same answer. */
  pending?: Promise<void>;
  /** SessionOptions.locateWrites. */
  locateWrites?: boolean;
}

/** Where the primary's WAL stands: asked after a write (its commit is at or before it). */
const POSITION_SQL = "SELECT pg_current_wal_insert_lsn()::text AS lsn";

/**
 * The scope's position moved to `lsn` (PostgreSQL's text) as a write told it, never backwards: another
 * write or question of the scope may have said a later position meanwhile.
 */
function advance(session: Session, lsn: string): void {
  const at = parseLsn(lsn);
  if (session.minLsn === undefined || at > session.minLsn) session.minLsn = at;
}

/** A pg client's socket, to write two pipelined queries in one go (pg corks it itself for each query's messages). */
type Corkable = { connection?: { stream?: { cork?: () => void; uncork?: () => void } } };

/** Past every LSN: when the primary cannot say where it stands, no replica qualifies (the read goes to the primary). */
const BEYOND_ANY_LSN = 2n ** 64n;

export class Database {
  private readonly options: ResolvedOptions;
  private readonly primaryPool: pg.Pool;
  /** The replicas in rotation: the discovered ones, or the configured (fallback) ones. */
  private replicas: Replica[];
  private readonly configured: Replica[];
  private discovered: Replica[] = [];
  private readonly resolver?: ReplicaResolver;
  private discoveryState: { resolutions: number; lastError?: string } = { resolutions: 0 };
  private readonly makePool: (endpoint: { host: string; port: number }, readTimeoutMs?: number, serverName?: string) => pg.Pool;
  private readonly sessions = new AsyncLocalStorage<Session>();
  /** Until a session is opened there is none to look up, and reads skip AsyncLocalStorage. */
  private sessionsUsed = false;
  /** Primary WAL positions over time, to turn a replica's replay position into a lag in time. */
  private samples: { at: number; lsn: bigint }[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private next = 0;
  private counts = { primaryReads: 0, writes: 0, fallbacks: 0 };
  private primaryConnectFailure?: { at: number; message: string; code?: string };
  private closed = false;
  private readonly readOnlyFunctions: ReadonlySet<string>;
  private readonly classified = new Map<string, boolean>();

  private constructor(options: ResolvedOptions) {
    this.options = options;
    this.readOnlyFunctions = new Set(options.readOnlyFunctions);
    const ssl = pgSsl(options.tls);
    const pool = (endpoint: { host: string; port: number }, readTimeoutMs?: number, serverName?: string, Client?: typeof pg.Client) => {
      const p = new pg.Pool({
        // The primary's clients pipeline (pg's pipeline mode: a query is written without waiting for the
        // one before it), for a write and its position question in one round trip (locateWrites). Each
        // query keeps its own Sync, so its own transaction and error; a client is still used by one
        // caller at a time, and pool.query sends one query per checkout as before. Never on a replica:
        // its read timeout would destroy a pipelined connection.
        ...(Client ? { Client, pipeline: true } : {}),
        host: endpoint.host,
        port: endpoint.port,
        database: options.database,
        user: options.user,
        password: options.password,
        // A replica reached by its address is verified against the name its certificate carries
        // (pg keeps a given servername when the host is an IP; Node checks the identity against it).
        ...(ssl ? { ssl: serverName ? { ...ssl, servername: serverName } : ssl } : {}),
        max: options.poolSize,
        connectionTimeoutMillis: options.connectTimeoutMs,
        keepAlive: true,
        keepAliveInitialDelayMillis: options.keepAliveInitialDelayMs,
        // Client-side: a stopped server enforces no statement_timeout. pg-pool drops the timed-out connection.
        ...(readTimeoutMs ? { query_timeout: readTimeoutMs } : {}),
      });
      // An idle connection dropped by the server must not crash the process; the next query notices.
      p.on("error", () => {});
      // Its queries' spans say which server answered (shopfds.db.role).
      registerDbServer(endpoint.host, endpoint.port, endpoint === options.primary ? "primary" : "replica");
      return p;
    };
    this.makePool = pool;
    this.primaryPool = pool(options.primary, undefined, undefined, this.trackedClient());
    this.configured = options.replicas.map((r) => ({ name: `${r.host}:${r.port}`, pool: pool(r, options.replicaReadTimeoutMs), healthy: true, reads: 0 }));
    this.replicas = this.configured;
    if (options.replicaDiscovery) this.resolver = new ReplicaResolver(options.replicaDiscovery);
  }

  /**
   * The primary pool's client, telling this router how each new connection went. A pool that cannot
   * open one still answers on the connections it holds, so a health check's `SELECT 1` passes while
   * every request needing one more connection fails: stats() reports it (postgresChecks fails on it).
   */
  private trackedClient(): typeof pg.Client {
    const router = this;
    const note = (error: Error | null | undefined) => {
      router.primaryConnectFailure = error ? { at: Date.now(), message: error.message, ...((error as { code?: string }).code ? { code: (error as { code?: string }).code } : {}) } : undefined;
    };
    class TrackedClient extends pg.Client {}
    const connect = pg.Client.prototype.connect as (this: pg.Client, callback?: (error: Error | null) => void) => Promise<pg.Client> | void;
    // pg-pool connects with a callback; a direct caller may use the promise.
    TrackedClient.prototype.connect = function (this: pg.Client, callback?: (error: Error | null) => void) {
      if (callback) return connect.call(this, (error) => (note(error), callback(error)));
      return (connect.call(this) as Promise<pg.Client>).then(
        (client) => (note(undefined), client),
        (error: Error) => {
          note(error);
          throw error;
        },
      );
    } as typeof pg.Client.prototype.connect;
    return TrackedClient;
  }

  /** Connects (lazily) and takes a first measurement of every replica before routing to it. */
  static async connect(options: DatabaseOptions | PostgresOutputs): Promise<Database> {
    const db = new Database(resolveOptions(options));
    await db.discover();
    await db.refresh();
    db.timers.push(setInterval(() => void db.refresh(), db.options.lagCheckIntervalMs).unref());
    db.timers.push(setInterval(() => void db.probeDown(), db.options.probeIntervalMs).unref());
    if (db.options.replicaDiscovery) db.timers.push(setInterval(() => void db.discover(), db.options.replicaDiscovery.intervalMs).unref());
    return db;
  }

  /**
   * Runs one statement where it belongs (see QueryOptions).
   *
   * Not an async function on purpose: the common case (a read on a healthy replica) is one pool call and
   * one `.then`, with no Set, no session lookup and no extra promise, so the router costs little over a
   * bare pool (measured by `npm run bench`).
   */
  query<R extends pg.QueryResultRow = any>(sql: string, params: unknown[] = [], options: QueryOptions = NO_OPTIONS): Promise<pg.QueryResult<R>> {
    if (this.closed) return Promise.reject(new Error("Cannot use a Database after calling close() on it"));
    const target = options.target ?? "auto";
    if (target !== "auto" && target !== "primary" && target !== "replica") {
      return Promise.reject(new TypeError(`unknown target ${JSON.stringify(target)}: use "auto", "primary" or "replica"`));
    }
    const name = options.prepare;
    if (name !== undefined && !STATEMENT_NAME.test(name)) {
      return Promise.reject(new TypeError(`prepare: must be a statement name of 1–63 characters (A–Z, a–z, 0–9, _ . -), got ${JSON.stringify(name)}`));
    }
    const read = target === "replica" || this.classify(sql);
    if (!read) return this.write<R>(sql, params, name);
    if (target === "primary" || options.fresh) return this.primaryRead<R>(sql, params, name);
    if (this.sessionsUsed) {
      const session = this.sessions.getStore();
      if (session && (session.wrote || session.pending)) return this.positionAfterWrite(session).then(() => this.replicaRead<R>(sql, params, name));
    }
    return this.replicaRead<R>(sql, params, name);
  }

  private replicaRead<R extends pg.QueryResultRow>(sql: string, params: unknown[], name: string | undefined): Promise<pg.QueryResult<R>> {
    const replica = this.pick();
    if (!replica) {
      this.counts.fallbacks++;
      return this.primaryRead<R>(sql, params, name);
    }
    return run<R>(replica.pool, sql, params, name).then(
      (result) => {
        replica.reads++;
        return result;
      },
      (error: unknown) => this.readElsewhere<R>(sql, params, name, replica, error),
    );
  }

  private primaryRead<R extends pg.QueryResultRow>(sql: string, params: unknown[], name: string | undefined): Promise<pg.QueryResult<R>> {
    this.counts.primaryReads++;
    return run<R>(this.primaryPool, sql, params, name);
  }

  private async write<R extends pg.QueryResultRow>(sql: string, params: unknown[], name: string | undefined): Promise<pg.QueryResult<R>> {
    const session = this.sessionsUsed ? this.sessions.getStore() : undefined;
    if (session?.locateWrites) return this.locatedWrite<R>(session, sql, params, name);
    const result = await run<R>(this.primaryPool, sql, params, name);
    this.counts.writes++;
    if (session) session.wrote = true;
    return result;
  }

  /**
   * A write and the position question behind it, pipelined on one primary connection in one socket
   * write: PostgreSQL runs the question after the write's Sync, so after its commit. Should the question
   * fail where the write did not, the scope asks again when its location is wanted (as without
   * locateWrites). A failed write releases its connection as pool.query does (destroyed).
   */
  private async locatedWrite<R extends pg.QueryResultRow>(session: Session, sql: string, params: unknown[], name: string | undefined): Promise<pg.QueryResult<R>> {
    const client = await this.primaryPool.connect();
    let failure: Error | undefined;
    // A connection error while both are out is theirs too; heard here, it must not go unhandled (pool.query listens the same way).
    const onError = (error: Error) => {
      failure ??= error;
    };
    client.on("error", onError);
    try {
      const stream = (client as unknown as Corkable).connection?.stream;
      stream?.cork?.();
      let written: Promise<pg.QueryResult<R>>, position: Promise<pg.QueryResult<{ lsn: string }>>;
      try {
        written = name === undefined ? client.query<R>(sql, params) : client.query<R>({ name, text: sql, values: params });
        position = client.query<{ lsn: string }>(POSITION_SQL);
      } finally {
        stream?.uncork?.();
      }
      const [result, at] = await Promise.allSettled([written, position]);
      if (result.status === "rejected") {
        failure = result.reason as Error;
        throw result.reason;
      }
      this.counts.writes++;
      if (at.status === "fulfilled") advance(session, at.value.rows[0]!.lsn);
      else session.wrote = true;
      return result.value;
    } finally {
      client.removeListener("error", onError);
      client.release(failure);
    }
  }

  /** A replica failed a read: if it is unreachable, take it out and try the others, then the primary. */
  private async readElsewhere<R extends pg.QueryResultRow>(sql: string, params: unknown[], name: string | undefined, failed: Replica, error: unknown): Promise<pg.QueryResult<R>> {
    if (!isConnectionError(error)) throw error;
    failed.healthy = false;
    this.counts.fallbacks++;
    const tried = new Set<Replica>([failed]);
    for (let replica = this.pick(tried); replica; replica = this.pick(tried)) {
      tried.add(replica);
      try {
        const result = await run<R>(replica.pool, sql, params, name);
        replica.reads++;
        return result;
      } catch (again) {
        if (!isConnectionError(again)) throw again;
        replica.healthy = false;
      }
    }
    return this.primaryRead<R>(sql, params, name);
  }

  /** Runs `fn` in one transaction on one primary connection; commits, or rolls back on a throw. */
  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.primaryPool.connect();
    try {
      await client.query("BEGIN");
      const result = await fn(client);
      const session = this.sessionsUsed ? this.sessions.getStore() : undefined;
      if (session) {
        // In a scope, where the WAL stands right after the commit, in the same round trip: the scope's
        // next read, its tasks and its client's next request need no question to the primary.
        const [, position] = (await client.query(`COMMIT; ${POSITION_SQL}`)) as unknown as [pg.QueryResult, pg.QueryResult<{ lsn: string }>];
        this.counts.writes++;
        advance(session, position.rows[0]!.lsn);
        return result;
      }
      await client.query("COMMIT");
      this.counts.writes++;
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /**
   * A read-your-writes scope (one request, one task): reads see this scope's writes even before replicas
   * do, and, with `after`, an earlier scope's (SessionOptions). `fn` gets the scope's handle.
   */
  withSession<T>(fn: (session: SessionHandle) => Promise<T>, o: SessionOptions = {}): Promise<T> {
    this.sessionsUsed = true;
    const after = parseWriteLocation(o.after);
    const session: Session = after !== undefined ? { minLsn: after } : {};
    if (o.locateWrites) session.locateWrites = true;
    const handle: SessionHandle = { writeLocation: () => this.locationOf(session), hasLocation: () => session.wrote === true || session.pending !== undefined || session.minLsn !== undefined };
    return this.sessions.run(session, () => fn(handle));
  }

  /** The write location of the scope this runs in (SessionHandle.writeLocation), or undefined outside one. */
  writeLocation(): Promise<string | undefined> {
    const session = this.sessionsUsed ? this.sessions.getStore() : undefined;
    return session ? this.locationOf(session) : Promise.resolve(undefined);
  }

  private async locationOf(session: Session): Promise<string | undefined> {
    await this.positionAfterWrite(session);
    return session.minLsn === undefined || session.minLsn >= BEYOND_ANY_LSN ? undefined : formatLsn(session.minLsn);
  }

  stats(): DatabaseStats {
    return {
      reads: { primary: this.counts.primaryReads, replicas: this.replicas.reduce((n, r) => n + r.reads, 0) },
      writes: this.counts.writes,
      fallbacks: this.counts.fallbacks,
      replicas: this.replicas.map((r) => ({ name: r.name, healthy: r.healthy, lagMs: r.lagMs, lagBytes: r.lagBytes, reads: r.reads })),
      pools: [{ name: "primary", pool: this.primaryPool }, ...this.replicas].map(({ name, pool: p }) => ({ name, total: p.totalCount, idle: p.idleCount, waiting: p.waitingCount, max: p.options.max ?? 10 })),
      ...(this.primaryConnectFailure ? { primaryConnectFailure: { ...this.primaryConnectFailure } } : {}),
      ...(this.resolver
        ? { discovery: { source: this.replicas === this.configured ? ("fallback" as const) : ("dns" as const), resolutions: this.discoveryState.resolutions, ...(this.discoveryState.lastError ? { lastError: this.discoveryState.lastError } : {}) } }
        : {}),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.resolver?.cancel();
    await Promise.all([this.primaryPool.end(), ...[...this.configured, ...this.discovered].map((r) => r.pool.end())]);
  }

  /**
   * Resolves the discovery name and makes its addresses the replicas in rotation: a new address gets a
   * pool and is measured before it is used; a vanished one leaves rotation (its pool ends once its reads
   * are done). A name with no address (no replica ready) falls back to the configured replicas; a DNS
   * failure keeps the replicas known so far (each one's health is probed on its own).
   */
  private async discover(): Promise<void> {
    const d = this.options.replicaDiscovery;
    if (!d || !this.resolver || this.closed) return;
    const found = await this.resolver.resolve();
    if (this.closed) return;
    this.discoveryState.resolutions++;
    if (found.kind === "failed") {
      this.discoveryState.lastError = found.error.message;
      return;
    }
    this.discoveryState.lastError = undefined;
    if (found.kind === "none") {
      if (this.replicas !== this.configured) {
        await Promise.all(this.configured.map((r) => this.measure(r)));
        this.replicas = this.configured;
      }
      return;
    }
    const known = new Map(this.discovered.map((r) => [r.address, r]));
    const next = found.addresses.map(
      (address): Replica =>
        known.get(address) ?? { name: `${address.includes(":") ? `[${address}]` : address}:${d.port}`, address, pool: this.makePool({ host: address, port: d.port }, this.options.replicaReadTimeoutMs, d.serverName), healthy: true, reads: 0 },
    );
    const added = next.filter((r) => !known.has(r.address));
    await Promise.all(added.map((r) => this.measure(r)));
    if (this.closed) {
      await Promise.all(added.map((r) => r.pool.end()));
      return;
    }
    const kept = new Set(next);
    const removed = this.discovered.filter((r) => !kept.has(r));
    this.discovered = next;
    this.replicas = next;
    this.next = 0;
    for (const r of removed) void r.pool.end().catch(() => undefined);
  }

  /**
   * Whether `sql` may go to a replica, remembered per statement text: services send the same
   * parameterised statements again and again, and lexing each one costs more than the round trip saves.
   */
  private classify(sql: string): boolean {
    let readOnly = this.classified.get(sql);
    if (readOnly === undefined) {
      readOnly = isReadOnlyStatement(sql, { readOnlyFunctions: this.readOnlyFunctions });
      if (this.classified.size >= CLASSIFY_CACHE_SIZE) this.classified.delete(this.classified.keys().next().value as string);
      this.classified.set(sql, readOnly);
    }
    return readOnly;
  }

  /** The next usable replica in round-robin order, skipping those already tried. */
  private pick(tried?: Set<Replica>): Replica | undefined {
    const minLsn = this.sessionsUsed ? this.sessions.getStore()?.minLsn : undefined;
    for (let i = 0; i < this.replicas.length; i++) {
      const r = this.replicas[(this.next + i) % this.replicas.length];
      if (tried?.has(r) || !r.healthy || r.lagMs === undefined || r.lagMs > this.options.maxLagMs) continue;
      if (minLsn !== undefined && (r.replayLsn === undefined || r.replayLsn < minLsn)) continue;
      this.next = (this.next + i + 1) % this.replicas.length;
      return r;
    }
    return undefined;
  }

  /** The primary's WAL position after the scope's writes, asked once however many reads wait for it. */
  private positionAfterWrite(session: Session): Promise<void> {
    if (session.wrote) {
      session.wrote = false;
      const asked: Promise<void> = this.primaryPool.query(POSITION_SQL).then(
        ({ rows }) => advance(session, rows[0].lsn),
        () => {
          session.minLsn = BEYOND_ANY_LSN;
        },
      );
      session.pending = asked;
      void asked.then(() => {
        if (session.pending === asked) session.pending = undefined;
      });
    }
    return session.pending ?? Promise.resolve();
  }

  /** Samples the primary's position and measures every healthy replica against it. */
  private async refresh(): Promise<void> {
    if (this.closed) return;
    try {
      const { rows } = await this.primaryPool.query("SELECT pg_current_wal_lsn()::text AS lsn");
      const now = Date.now();
      this.samples.push({ at: now, lsn: parseLsn(rows[0].lsn) });
      this.samples = this.samples.filter((s) => now - s.at <= this.options.maxLagMs * 3);
    } catch {
      return; // primary unreachable: keep the last measurements
    }
    await Promise.all(this.replicas.filter((r) => r.healthy).map((r) => this.measure(r)));
  }

  private async probeDown(): Promise<void> {
    if (this.closed) return;
    await Promise.all(this.replicas.filter((r) => !r.healthy).map((r) => this.measure(r)));
  }

  private async measure(r: Replica): Promise<void> {
    try {
      const { rows } = await r.pool.query("SELECT pg_last_wal_replay_lsn()::text AS replay");
      if (rows[0].replay === null) throw Object.assign(new Error(`${r.name} is not a standby`), { code: "08000" });
      r.replayLsn = parseLsn(rows[0].replay);
      const latest = this.samples[this.samples.length - 1];
      if (!latest || r.replayLsn >= latest.lsn) {
        r.lagMs = 0;
        r.lagBytes = 0;
      } else {
        // Lag in time: since when has the primary been past the position the replica has replayed?
        const passedAt = this.samples.find((s) => s.lsn > (r.replayLsn as bigint))?.at ?? this.samples[0].at;
        r.lagMs = Date.now() - passedAt;
        r.lagBytes = Number(latest.lsn - r.replayLsn);
      }
      r.healthy = true;
    } catch (error) {
      if (isConnectionError(error)) r.healthy = false;
    }
  }
}
