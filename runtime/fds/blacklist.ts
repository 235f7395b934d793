/**
 * The FDS blacklist: IPs, e-mail addresses and card numbers (as keyed hashes) on the Redis Cluster,
 * written through to PostgreSQL's `blacklist_entries`.
 *
 * - Durable: an entry is written to PostgreSQL first, then to Redis, and acknowledged only once a
 *   Redis replica has it too (`WAIT`), so losing a master loses nothing; `resync()` reloads Redis from
 *   PostgreSQL after a total loss.
 * - Expiry by the servers: Redis keys carry the entry's expiry (`PXAT`), PostgreSQL rows are filtered
 *   by `expires_at`; no sweeper is needed for correctness.
 * - Real time (FR-012): there is no in-process cache, so an entry added by one instance is seen by every
 *   other instance on its next check.
 * - Checks read the keys in parallel (one round trip per node involved), and when
 *   the cluster cannot answer in time (majority lost, CLUSTERDOWN, failover, timeouts) they ask
 *   PostgreSQL instead, so fraud is still blocked; fallbacks are counted for metrics and health.
 */
import type { Cluster } from "ioredis";
import type pg from "pg";
import { z } from "zod";
import type { Database } from "../db/router";
import { withTimeout } from "../timeout";
import { BLACKLIST_TYPES, BlacklistType, canonicalEmail, canonicalIp, cardDigits, cardHash, CardHashKey, InvalidValueError } from "./canonical";
import { InputError, NotFoundError, UnavailableError } from "../errors";

export interface BlacklistEntry {
  readonly type: BlacklistType;
  /** Canonical IP or e-mail; for a card, the HMAC-SHA-256 hex of its digits. */
  readonly value: string;
  /** For a card: the version of the key that made `value`. */
  readonly keyVersion?: number;
  readonly reason: string;
  readonly source: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

export interface BlacklistOptions {
  /** Card-hash keys by version (stack outputs `fds.cardHashKeys`); the highest version hashes new entries. */
  readonly cardHashKeys: readonly CardHashKey[];
  /** @default 7 days (FR-011) */
  readonly defaultTtlSeconds?: number;
  /** How long a write waits for a replica's acknowledgement (`WAIT`). @default 500 */
  readonly replicaAckTimeoutMs?: number;
  /** How long a check waits for Redis before asking PostgreSQL. @default 300 */
  readonly checkTimeoutMs?: number;
  /** @default "fds:bl:" */
  readonly keyPrefix?: string;
}

export interface CheckInput {
  readonly ip?: string;
  readonly email?: string;
  readonly card?: string;
}

export interface CheckResult {
  readonly listed: boolean;
  readonly matches: readonly BlacklistEntry[];
  /** Who answered: the cluster, or PostgreSQL when the cluster could not. */
  readonly source: "redis" | "postgres";
}

export interface BlacklistStats {
  readonly checks: number;
  readonly hits: number;
  readonly fallbacks: number;
  readonly lastFallback?: { readonly at: Date; readonly reason: string };
}

/** The field a problem line names (`ttlSeconds: must be …` → `ttlSeconds`), `body` for the whole input. */
const problemField = (problem: string | undefined): string => {
  const field = (problem ?? "").slice(0, Math.max(0, (problem ?? "").indexOf(":")));
  return !field || field === "(input)" ? "body" : field;
};

/** Bad admin input; `problems` name each field, e.g. `ttlSeconds: must be a positive integer (got -5)`. */
export class BlacklistInputError extends InputError {
  constructor(readonly problems: readonly string[]) {
    super(problemField(problems[0]), `invalid blacklist input: ${problems.join("; ")}`);
  }

  override get publicMessage(): string {
    return this.problems.join("; ");
  }
}

/** `changeTtl` of a value that has no current entry. */
export class BlacklistEntryNotFoundError extends NotFoundError {
  override readonly code = "ENTRY_NOT_FOUND";
  constructor(type: BlacklistType) {
    super("value", `value: no current ${type} entry for it`);
  }
}

/**
 * The entry is stored in PostgreSQL and on the Redis master, but no replica confirmed it in time: not as
 * durable as promised; the caller should retry (writes are idempotent).
 */
export class BlacklistWriteError extends UnavailableError {}

/**
 * Nothing was changed: Redis refused or could not take the write, so PostgreSQL's was rolled back (an
 * entry is in both stores or in neither). `full`: the masters are at `maxmemory` (the stacks run
 * `noeviction`, so writes are refused while reads go on) — memory must be freed or raised first.
 */
export class BlacklistNotStoredError extends UnavailableError {
  override readonly code: string;
  override readonly publicMessage: string;
  constructor(
    message: string,
    readonly full: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, { ...options, retryAfterSeconds: full ? 30 : 5 });
    this.code = full ? "BLACKLIST_STORE_FULL" : "BLACKLIST_STORE_UNAVAILABLE";
    this.publicMessage = full
      ? "the blacklist's Redis Cluster is out of memory (maxmemory): nothing was changed; retry once memory is freed"
      : "the blacklist's Redis Cluster could not take the change: nothing was changed; retry shortly";
  }
}

/** Redis's refusal of a write at maxmemory under noeviction. */
const isOutOfMemory = (e: unknown): boolean => /^OOM /.test((e as Error)?.message ?? "");

/** Thrown inside a transaction when Redis took nothing: the transaction rolls back. */
class RedisRefused extends Error {}

/** Neither Redis nor PostgreSQL could answer a check. */
export class BlacklistUnavailableError extends UnavailableError {}

const MAX_TTL_SECONDS = 365 * 24 * 3600;
const addSchema = z
  .object({
    type: z.enum(BLACKLIST_TYPES, { error: (i) => `must be one of ${BLACKLIST_TYPES.join(", ")} (got ${JSON.stringify(i.input)})` }),
    value: z.string({ error: "must be a string" }),
    reason: z.string({ error: "must be a string" }).trim().min(1, "must not be empty").max(500, "must be at most 500 characters"),
    source: z.string({ error: "must be a string" }).trim().min(1, "must not be empty").max(100, "must be at most 100 characters"),
    ttlSeconds: z
      .number({ error: (i) => `must be a number (got ${JSON.stringify(i.input)})` })
      .int({ error: (i) => `must be a whole number of seconds (got ${JSON.stringify(i.input)})` })
      .refine((n) => n > 0, { error: (i) => `must be a positive integer (got ${JSON.stringify(i.input)})` })
      .refine((n) => n <= MAX_TTL_SECONDS, { error: (i) => `must be at most ${MAX_TTL_SECONDS} (365 days) (got ${JSON.stringify(i.input)})` })
      .optional(),
  })
  .strict();
export type AddInput = z.input<typeof addSchema>;

function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const result = schema.safeParse(input);
  if (!result.success) throw new BlacklistInputError(result.error.issues.map((i) => `${i.path.map(String).join(".") || "(input)"}: ${i.message}`));
  return result.data;
}

const ttlSchema = z.object({ ttlSeconds: addSchema.shape.ttlSeconds.unwrap() });
const typeSchema = z.object({ type: addSchema.shape.type });

interface Probe {
  readonly type: BlacklistType;
  readonly value: string;
  readonly keyVersion?: number;
  readonly key: string;
}

/** What Redis holds per entry (the key says type and value). */
interface StoredEntry {
  r: string;
  s: string;
  c: number;
  e: number;
  k?: number;
}

interface Row {
  entry_type: BlacklistType;
  value: string;
  key_version: number | null;
  reason: string;
  source: string;
  created_at: Date;
  expires_at: Date;
}

const fromRow = (r: Row): BlacklistEntry => ({
  type: r.entry_type,
  value: r.value,
  ...(r.key_version !== null ? { keyVersion: r.key_version } : {}),
  reason: r.reason,
  source: r.source,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});
const COLUMNS = "entry_type, value, key_version, reason, source, created_at, expires_at";


/** Who changes an entry, and why (the history's actor and reason). */
export interface ChangeBy {
  readonly actor?: string;
  readonly reason?: string;
}

/** One line of the blacklist's history (runtime/migrations/0003_blacklist_history.ts). */
export interface BlacklistEvent {
  readonly id: number;
  readonly type: BlacklistType;
  readonly value: string;
  readonly keyVersion?: number;
  readonly action: "added" | "renewed" | "changed" | "removed" | "expired";
  readonly actor: string;
  readonly reason: string;
  readonly expiresAt: Date;
  readonly at: Date;
}

/** Sets the transaction's actor and reason, which the history trigger records. */
async function recordAs(client: pg.PoolClient, by: ChangeBy): Promise<void> {
  if (by.actor === undefined && by.reason === undefined) return;
  await client.query("SELECT set_config('shopfds.actor', $1, true), set_config('shopfds.reason', $2, true)", [by.actor?.slice(0, 200) ?? "", by.reason?.slice(0, 500) ?? ""]);
}

/** Blacklist.purgeExpired, for a process with no Redis client (the worker's scheduled task). */
export function purgeExpiredEntries(db: Database): Promise<number> {
  return db.transaction(async (client) => {
    await recordAs(client, { actor: "system:expiry" });
    return (await client.query("DELETE FROM blacklist_entries WHERE expires_at <= now()")).rowCount ?? 0;
  });
}

export class Blacklist {
  private readonly keys: readonly CardHashKey[];
  private readonly currentKey: CardHashKey;
  private readonly defaultTtlSeconds: number;
  private readonly ackTimeoutMs: number;
  private readonly checkTimeoutMs: number;
  private readonly prefix: string;
  private counts = { checks: 0, hits: 0, fallbacks: 0 };
  private lastFallback?: { at: Date; reason: string };

  constructor(
    private readonly redis: Cluster,
    private readonly db: Database,
    options: BlacklistOptions,
  ) {
    if (options.cardHashKeys.length === 0) throw new BlacklistInputError(["cardHashKeys: must hold at least one key"]);
    this.keys = [...options.cardHashKeys].sort((a, b) => b.version - a.version);
    this.currentKey = this.keys[0] as CardHashKey;
    this.defaultTtlSeconds = options.defaultTtlSeconds ?? 7 * 24 * 3600;
    this.ackTimeoutMs = options.replicaAckTimeoutMs ?? 500;
    this.checkTimeoutMs = options.checkTimeoutMs ?? 300;
    this.prefix = options.keyPrefix ?? "fds:bl:";
  }

  /**
   * Adds (or renews) an entry; resolves once PostgreSQL has it and a Redis replica has confirmed it.
   * Both stores or neither: the row is written in a transaction that commits only after the Redis master
   * took the entry; a refusal (maxmemory, cluster down) rolls it back (BlacklistNotStoredError).
   */
  async add(input: AddInput): Promise<BlacklistEntry> {
    const parsed = parse(addSchema, input);
    const [probe] = this.probesFor(parsed.type, parsed.value, "value", true);
    const ttl = parsed.ttlSeconds ?? this.defaultTtlSeconds;
    return this.bothOrNeither("add", [probe!.key], async (client) => {
      const { rows } = await client.query<Row>(
      `INSERT INTO blacklist_entries (entry_type, value, key_version, reason, source, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, now(), now() + make_interval(secs => $6))
       ON CONFLICT (entry_type, value) DO UPDATE SET reason = EXCLUDED.reason, source = EXCLUDED.source,
         created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
       RETURNING ${COLUMNS}`,
      [probe!.type, probe!.value, probe!.keyVersion ?? null, parsed.reason, parsed.source, ttl],
      );
      const entry = fromRow(rows[0] as Row);
      return { result: entry, redis: () => this.writeToRedis(probe!.key, entry) };
    });
  }

  /**
   * A change of both stores: `write` runs on a PostgreSQL transaction and names its Redis write; the
   * transaction commits only once the Redis master took that write. Redis refusing or failing rolls
   * PostgreSQL back (nothing changed, BlacklistNotStoredError); a write the master took but no replica
   * confirmed is committed and reported (BlacklistWriteError: retry). Should the commit itself fail
   * after Redis took the write, `undo` keys are deleted again (an add's: best effort; a key left behind
   * only blocks, and expires with its entry). A remove or TTL change whose commit fails after Redis
   * took it stays changed in Redis only, until retried.
   */
  private async bothOrNeither<T>(what: string, undo: readonly string[], write: (client: pg.PoolClient) => Promise<{ result: T; redis: () => Promise<void> }>): Promise<T> {
    let notReplicated: BlacklistWriteError | undefined;
    let redisTook = false;
    let result: T;
    try {
      result = await this.db.transaction(async (client) => {
        const { result, redis } = await write(client);
        try {
          await redis();
        } catch (e) {
          if (e instanceof BlacklistWriteError) notReplicated = e;
          else throw new RedisRefused((e as Error).message, { cause: (e as Error).cause ?? e });
        }
        redisTook = true;
        return result;
      });
    } catch (error) {
      if (error instanceof RedisRefused) {
        const full = isOutOfMemory(error.cause);
        throw new BlacklistNotStoredError(`blacklist ${what}: nothing was changed: Redis ${full ? "is at maxmemory and refused the write" : "could not take the write"} (${error.message}); PostgreSQL was rolled back`, full, { cause: error.cause });
      }
      if (redisTook) await Promise.all(undo.map((k) => this.redis.del(k).catch(() => undefined)));
      throw error;
    }
    if (notReplicated) throw notReplicated;
    return result;
  }

  /**
   * Removes every entry for the value (all key versions for a card); returns whether one existed. `by`
   * names who and why, for the history (default: the database user, the entry's own reason).
   */
  async remove(type: BlacklistType, value: string, by: ChangeBy = {}): Promise<boolean> {
    parse(typeSchema, { type });
    const probes = this.probesFor(type, value, "value", false);
    // A delete that Redis could not take is rolled back: the entry stays listed in both, and the caller is told.
    return this.bothOrNeither("remove", [], async (client) => {
      await recordAs(client, by);
      const { rowCount } = await client.query(
        `DELETE FROM blacklist_entries WHERE (entry_type, value) IN (SELECT * FROM unnest($1::blacklist_type[], $2::text[]))`,
        [probes.map((p) => p.type), probes.map((p) => p.value)],
      );
      // One pipeline per key: a card's versions hash to different slots, possibly different masters.
      return { result: (rowCount ?? 0) > 0, redis: async () => void (await Promise.all(probes.map((p) => this.confirmed(p.key, this.redis.pipeline().del(p.key), "remove")))) };
    });
  }

  /** Gives an existing entry a new time to live, counted from now (`by`: as for remove). */
  async changeTtl(type: BlacklistType, value: string, ttlSeconds: number, by: ChangeBy = {}): Promise<BlacklistEntry> {
    parse(typeSchema, { type });
    parse(ttlSchema, { ttlSeconds });
    const probes = this.probesFor(type, value, "value", false);
    return this.bothOrNeither("changeTtl", [], async (client) => {
      await recordAs(client, by);
      const { rows } = await client.query<Row>(
        `UPDATE blacklist_entries SET expires_at = now() + make_interval(secs => $3)
         WHERE (entry_type, value) IN (SELECT * FROM unnest($1::blacklist_type[], $2::text[])) AND expires_at > now()
         RETURNING ${COLUMNS}`,
        [probes.map((p) => p.type), probes.map((p) => p.value), ttlSeconds],
      );
      const row = rows[0];
      if (!row) throw new BlacklistEntryNotFoundError(type);
      const entry = fromRow(row);
      return { result: entry, redis: () => this.writeToRedis(probes.find((p) => p.value === entry.value)!.key, entry) };
    });
  }

  /**
   * Deletes the rows past their expiry (their Redis keys expired by themselves), each recorded in the
   * history as expired by `system:expiry`; returns how many. Run it from a schedule: until then an
   * expired entry is already ignored everywhere, only its history line waits.
   */
  purgeExpired(): Promise<number> {
    return purgeExpiredEntries(this.db);
  }

  /**
   * The history of the entries (of a type, of one value), oldest first, `limit` at a time: every add,
   * renewal, change, removal and expiry with who, why and when, kept after the entry is gone.
   */
  async history(q: { type?: BlacklistType; value?: string; limit?: number; after?: number } = {}): Promise<{ events: BlacklistEvent[]; next?: number }> {
    if (q.type !== undefined) parse(typeSchema, { type: q.type });
    if (q.value !== undefined && q.type === undefined) throw new BlacklistInputError(["type: must be given with value (got nothing)"]);
    const limit = q.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new BlacklistInputError([`limit: must be an integer from 1 to 1000 (got ${JSON.stringify(q.limit)})`]);
    if (q.after !== undefined && (!Number.isInteger(q.after) || q.after < 0)) throw new BlacklistInputError([`after: must be a cursor returned as next (got ${JSON.stringify(q.after)})`]);
    const values = q.value !== undefined ? this.probesFor(q.type!, q.value, "value", false).map((p) => p.value) : null;
    const { rows } = await this.db.query<{ id: string; entry_type: BlacklistType; value: string; key_version: number | null; action: BlacklistEvent["action"]; actor: string; reason: string; expires_at: Date; at: Date }>(
      `SELECT id, entry_type, value, key_version, action, actor, reason, expires_at, at FROM blacklist_history
       WHERE ($1::blacklist_type IS NULL OR entry_type = $1) AND ($2::text[] IS NULL OR value = ANY($2)) AND id > $3
       ORDER BY id LIMIT $4`,
      [q.type ?? null, values, q.after ?? 0, limit + 1],
      { fresh: true },
    );
    const events = rows.slice(0, limit).map((r) => ({
      id: Number(r.id),
      type: r.entry_type,
      value: r.value,
      ...(r.key_version !== null ? { keyVersion: r.key_version } : {}),
      action: r.action,
      actor: r.actor,
      reason: r.reason,
      expiresAt: r.expires_at,
      at: r.at,
    }));
    return rows.length > limit ? { events, next: events[events.length - 1]!.id } : { events };
  }

  /** Current entries of one type, oldest first, `limit` at a time; pass `next` back as `after`. */
  async list(type: BlacklistType, page: { limit?: number; after?: number } = {}): Promise<{ entries: (BlacklistEntry & { id: number })[]; next?: number }> {
    parse(typeSchema, { type });
    const limit = page.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new BlacklistInputError([`limit: must be an integer from 1 to 1000 (got ${JSON.stringify(page.limit)})`]);
    if (page.after !== undefined && (!Number.isInteger(page.after) || page.after < 0)) throw new BlacklistInputError([`after: must be a cursor returned as next (got ${JSON.stringify(page.after)})`]);
    const { rows } = await this.db.query<Row & { id: string }>(
      `SELECT id, ${COLUMNS} FROM blacklist_entries WHERE entry_type = $1 AND expires_at > now() AND id > $2 ORDER BY id LIMIT $3`,
      [type, page.after ?? 0, limit + 1],
      { fresh: true },
    );
    const entries = rows.slice(0, limit).map((r) => ({ id: Number(r.id), ...fromRow(r) }));
    return rows.length > limit ? { entries, next: entries[entries.length - 1]!.id } : { entries };
  }

  /** Is any of the given values listed? Answers from Redis, or from PostgreSQL when Redis cannot. */
  async check(input: CheckInput): Promise<CheckResult> {
    const probes: Probe[] = [];
    if (input.ip !== undefined) probes.push(...this.probesFor("ip", input.ip, "ip", false));
    if (input.email !== undefined) probes.push(...this.probesFor("email", input.email, "email", false));
    if (input.card !== undefined) probes.push(...this.probesFor("card", input.card, "card", false));
    if (probes.length === 0) throw new InvalidValueError("check", "give at least one of ip, email and card");
    this.counts.checks++;
    let result: CheckResult;
    try {
      const stored = await withTimeout(Promise.all(probes.map((p) => this.redis.get(p.key))), this.checkTimeoutMs, "blacklist check on Redis");
      const matches: BlacklistEntry[] = [];
      stored.forEach((json, i) => {
        if (json === null) return;
        const s = JSON.parse(json) as StoredEntry;
        const p = probes[i] as Probe;
        matches.push({ type: p.type, value: p.value, ...(s.k !== undefined ? { keyVersion: s.k } : {}), reason: s.r, source: s.s, createdAt: new Date(s.c), expiresAt: new Date(s.e) });
      });
      result = { listed: matches.length > 0, matches, source: "redis" };
    } catch (error) {
      this.counts.fallbacks++;
      this.lastFallback = { at: new Date(), reason: (error as Error).message };
      // No answer in time may be a hung master already replaced: re-read the slot map now rather than
      // at the next periodic refresh (ioredis runs one refresh at a time, so a burst costs one).
      this.redis.refreshSlotsCache();
      const matches = await this.checkDatabase(probes);
      result = { listed: matches.length > 0, matches, source: "postgres" };
    }
    if (result.listed) this.counts.hits++;
    return result;
  }

  /** Writes every current PostgreSQL entry back to Redis (after the cluster lost its data). */
  async resync(): Promise<number> {
    let after = 0;
    let written = 0;
    for (;;) {
      const { rows } = await this.db.query<Row & { id: string }>(
        `SELECT id, ${COLUMNS} FROM blacklist_entries WHERE expires_at > now() AND id > $1 ORDER BY id LIMIT 500`,
        [after],
        { fresh: true },
      );
      if (rows.length === 0) return written;
      await Promise.all(
        rows.map((r) => {
          const e = fromRow(r);
          return this.redis.set(this.key(e.type, e.value, e.keyVersion), JSON.stringify(this.stored(e)), "PXAT", e.expiresAt.getTime());
        }),
      );
      written += rows.length;
      after = Number(rows[rows.length - 1]!.id);
    }
  }

  stats(): BlacklistStats {
    return { ...this.counts, ...(this.lastFallback ? { lastFallback: { ...this.lastFallback } } : {}) };
  }

  private key(type: BlacklistType, value: string, keyVersion?: number): string {
    return type === "card" ? `${this.prefix}card:v${keyVersion}:${value}` : `${this.prefix}${type}:${value}`;
  }

  /** The keys to look at for a value: one for an IP or e-mail, one per key version for a card. */
  private probesFor(type: BlacklistType, raw: string, field: string, forWrite: boolean): Probe[] {
    if (type === "ip") {
      const value = canonicalIp(raw, field);
      return [{ type, value, key: this.key(type, value) }];
    }
    if (type === "email") {
      const value = canonicalEmail(raw, field);
      return [{ type, value, key: this.key(type, value) }];
    }
    const digits = cardDigits(raw, field);
    return (forWrite ? [this.currentKey] : this.keys).map((k) => {
      const value = cardHash(digits, k);
      return { type, value, keyVersion: k.version, key: this.key(type, value, k.version) };
    });
  }

  private stored(e: BlacklistEntry): StoredEntry {
    return { r: e.reason, s: e.source, c: e.createdAt.getTime(), e: e.expiresAt.getTime(), ...(e.keyVersion !== undefined ? { k: e.keyVersion } : {}) };
  }

  private writeToRedis(key: string, entry: BlacklistEntry): Promise<void> {
    return this.confirmed(key, this.redis.pipeline().set(key, JSON.stringify(this.stored(entry)), "PXAT", entry.expiresAt.getTime()), "write");
  }

  /**
   * Runs a write and `WAIT 1` in one pipeline: the pipeline goes to the master owning the key's slot,
   * so WAIT counts that master's replicas. Fails unless a replica acknowledged in time.
   */
  private async confirmed(key: string, pipeline: ReturnType<Cluster["pipeline"]>, what: string): Promise<void> {
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.call("WAIT", "1", String(this.ackTimeoutMs)).exec();
    } catch (cause) {
      throw new Error(`blacklist ${what} of ${key.split(":").slice(0, 3).join(":")}…: Redis failed: ${(cause as Error).message}`, { cause });
    }
    // The write itself refused (OOM at maxmemory, a moved slot…): nothing was written.
    const failed = results?.find(([e]) => e);
    if (failed) throw new Error(`blacklist ${what}: Redis refused: ${failed[0]!.message}`, { cause: failed[0] });
    const acks = Number(results?.[results.length - 1]?.[1]);
    if (!(acks >= 1)) throw new BlacklistWriteError(`blacklist ${what}: stored in PostgreSQL and on the Redis master, but no replica confirmed it within ${this.ackTimeoutMs} ms; retry`);
  }

  private async checkDatabase(probes: readonly Probe[]): Promise<BlacklistEntry[]> {
    const sql = `SELECT ${COLUMNS} FROM blacklist_entries WHERE expires_at > now() AND (entry_type, value) IN (SELECT * FROM unnest($1::blacklist_type[], $2::text[]))`;
    const params = [probes.map((p) => p.type), probes.map((p) => p.value)];
    try {
      return (await this.db.query<Row>(sql, params, { fresh: true })).rows.map(fromRow);
    } catch (primaryError) {
      try {
        return (await this.db.query<Row>(sql, params, { target: "replica" })).rows.map(fromRow);
      } catch {
        throw new BlacklistUnavailableError(`blacklist check: Redis and PostgreSQL both failed (${(primaryError as Error).message})`, { cause: primaryError });
      }
    }
  }
}
