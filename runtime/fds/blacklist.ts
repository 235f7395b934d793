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
import { BULK_FORMATS, BulkFormat, bulkHeader, formatBulkLine, parseBulk } from "./bulk";

/** A block entry stops a transaction; an allow entry of the same value wins over it while both are current. */
export const ENTRY_KINDS = ["block", "allow"] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

export interface BlacklistEntry {
  readonly kind: EntryKind;
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
  /** Where block entries live in Redis. @default "fds:bl:" */
  readonly keyPrefix?: string;
  /** Where allow entries live in Redis. @default `keyPrefix` with `bl:` made `allow:` ("fds:allow:") */
  readonly allowKeyPrefix?: string;
}

export interface CheckInput {
  readonly ip?: string;
  readonly email?: string;
  readonly card?: string;
}

export interface CheckResult {
  /** A block entry applies: one matched and no allow entry of the same value (type) set it aside. */
  readonly listed: boolean;
  /** The block entries that apply. */
  readonly matches: readonly BlacklistEntry[];
  /** The allow entries of the types a block entry matched (each wins over the block entries of its value). */
  readonly allowed: readonly BlacklistEntry[];
  /** The block entries an allow entry set aside (for the decision's reasons). */
  readonly overridden: readonly BlacklistEntry[];
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
const kindSchema = z.enum(ENTRY_KINDS, { error: (i) => `must be one of ${ENTRY_KINDS.join(", ")} (got ${JSON.stringify(i.input)})` });
const addSchema = z
  .object({
    kind: kindSchema.optional(),
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
const importLineSchema = z
  .object({
    kind: kindSchema.optional(),
    type: addSchema.shape.type,
    value: z.string({ error: (i) => `must be a string (got ${JSON.stringify(i.input)})` }).optional(),
    hash: z.string({ error: "must be a string" }).regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex digits (a card's keyed hash, as exported)").optional(),
    keyVersion: z.number({ error: (i) => `must be a number (got ${JSON.stringify(i.input)})` }).int({ error: "must be a whole number" }).optional(),
    reason: addSchema.shape.reason,
    source: addSchema.shape.source.optional(),
    ttlSeconds: addSchema.shape.ttlSeconds,
    expiresAt: z.iso.datetime({ offset: true, error: (i) => `must be an ISO 8601 date-time with its offset, e.g. 2027-01-31T00:00:00Z (got ${JSON.stringify(i.input)})` }).optional(),
  })
  .strict();
const typeSchema = z.object({ type: addSchema.shape.type, kind: kindSchema.optional() });
const formatSchema = z.object({ format: z.enum(BULK_FORMATS, { error: (i) => `must be one of ${BULK_FORMATS.join(", ")} (got ${JSON.stringify(i.input)})` }) });

interface Probe {
  readonly kind: EntryKind;
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
  kind: EntryKind;
  entry_type: BlacklistType;
  value: string;
  key_version: number | null;
  reason: string;
  source: string;
  created_at: Date;
  expires_at: Date;
}

const fromRow = (r: Row): BlacklistEntry => ({
  kind: r.kind,
  type: r.entry_type,
  value: r.value,
  ...(r.key_version !== null ? { keyVersion: r.key_version } : {}),
  reason: r.reason,
  source: r.source,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});
const COLUMNS = "kind, entry_type, value, key_version, reason, source, created_at, expires_at";


/** One problem of one line of an import: `line` counts from 1 (a CSV's header is line 1). */
export interface ImportLineError {
  readonly line: number;
  readonly field: string;
  readonly problem: string;
}

export interface ImportOptions {
  readonly format: BulkFormat;
  /** Who imports: the history's actor, and the source of the lines that name none. */
  readonly actor: string;
  /** skip (default): apply the valid lines, report the others; reject: apply nothing when a line is bad. */
  readonly onInvalid?: "skip" | "reject";
}

export interface ImportReport {
  /** Entry lines read (blank lines and a CSV's header not counted). */
  readonly lines: number;
  /** New entries (or expired ones listed again). */
  readonly added: number;
  /** Current entries whose reason, source or explicit expiry changed. */
  readonly updated: number;
  /** Valid lines that changed nothing (a rerun of the same import is all unchanged). */
  readonly unchanged: number;
  readonly errors: readonly ImportLineError[];
  /** false when `onInvalid: "reject"` refused the batch for its errors (nothing written). */
  readonly applied: boolean;
}

/** At most this many lines per import (each one upsert statement; Redis written in chunks). */
export const MAX_IMPORT_LINES = 50_000;

/** Who changes an entry, and why (the history's actor and reason); which kind of entry. */
export interface ChangeBy {
  readonly actor?: string;
  readonly reason?: string;
  /** @default "block" */
  readonly kind?: EntryKind;
}

/** One line of the blacklist's history (runtime/migrations/0003_blacklist_history.ts). */
export interface BlacklistEvent {
  readonly id: number;
  readonly kind: EntryKind;
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
  private readonly allowPrefix: string;
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
    this.allowPrefix = options.allowKeyPrefix ?? (this.prefix.endsWith("bl:") ? `${this.prefix.slice(0, -3)}allow:` : `${this.prefix}allow:`);
    if (this.allowPrefix === this.prefix) throw new BlacklistInputError([`allowKeyPrefix: must differ from keyPrefix (both ${JSON.stringify(this.prefix)})`]);
  }

  /**
   * Adds (or renews) an entry; resolves once PostgreSQL has it and a Redis replica has confirmed it.
   * Both stores or neither: the row is written in a transaction that commits only after the Redis master
   * took the entry; a refusal (maxmemory, cluster down) rolls it back (BlacklistNotStoredError).
   */
  async add(input: AddInput): Promise<BlacklistEntry> {
    const parsed = parse(addSchema, input);
    const [probe] = this.probesFor(parsed.kind ?? "block", parsed.type, parsed.value, "value", true);
    const ttl = parsed.ttlSeconds ?? this.defaultTtlSeconds;
    return this.bothOrNeither("add", async (client) => {
      const { rows } = await client.query<Row>(
      `INSERT INTO blacklist_entries (kind, entry_type, value, key_version, reason, source, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, now(), now() + make_interval(secs => $7))
       ON CONFLICT (kind, entry_type, value) DO UPDATE SET reason = EXCLUDED.reason, source = EXCLUDED.source,
         created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
       RETURNING ${COLUMNS}`,
      [probe!.kind, probe!.type, probe!.value, probe!.keyVersion ?? null, parsed.reason, parsed.source, ttl],
      );
      const entry = fromRow(rows[0] as Row);
      return { result: entry, undo: [probe!.key], redis: () => this.writeToRedis(probe!.key, entry) };
    });
  }

  /**
   * Imports entries in bulk (runtime/fds/bulk.ts has the format): every line is validated and the bad
   * ones reported by line and field; the valid ones are applied together as one change of both stores
   * (one PostgreSQL transaction committed only after Redis took every key; a Redis refusal restores the
   * keys already written and rolls everything back: BlacklistNotStoredError, nothing applied).
   * Idempotent: a line equal to a current entry (kind, type, value, reason, source, and its expiry to the
   * millisecond when given as expiresAt) changes nothing, so rerunning an import — or importing an export — does nothing
   * the second time; a line with ttlSeconds renews only an entry whose reason or source differ.
   */
  async importEntries(text: string, options: ImportOptions): Promise<ImportReport> {
    const format = parse(formatSchema, { format: options.format }).format;
    const actor = parse(z.object({ actor: addSchema.shape.source }), { actor: options.actor }).actor;
    const lines = parseBulk(text, format);
    if (lines.length > MAX_IMPORT_LINES) throw new BlacklistInputError([`body: at most ${MAX_IMPORT_LINES} lines per import (got ${lines.length}); split the file`]);
    const errors: ImportLineError[] = [];
    const valid: (Probe & { line: number; reason: string; source: string; ttl: number | null; expiresAt: string | null })[] = [];
    const seen = new Map<string, number>();
    for (const l of lines) {
      if ("problem" in l) {
        errors.push({ line: l.line, field: l.field, problem: l.problem });
        continue;
      }
      const checked = this.importLine(l.fields, actor);
      if ("problems" in checked) {
        errors.push(...checked.problems.map((p) => ({ line: l.line, ...p })));
        continue;
      }
      // The entry's Redis key names its kind, type and value: one line per key.
      const first = seen.get(checked.key);
      if (first !== undefined) {
        errors.push({ line: l.line, field: checked.hashed ? "hash" : "value", problem: `the same ${checked.kind} ${checked.type} entry as line ${first}` });
        continue;
      }
      seen.set(checked.key, l.line);
      valid.push({ ...checked, line: l.line });
    }
    errors.sort((a, b) => a.line - b.line);
    if (errors.length > 0 && options.onInvalid === "reject") return { lines: lines.length, added: 0, updated: 0, unchanged: 0, errors, applied: false };
    if (valid.length === 0) return { lines: lines.length, added: 0, updated: 0, unchanged: 0, errors, applied: true };
    const params = [
      valid.map((v) => v.kind),
      valid.map((v) => v.type),
      valid.map((v) => v.value),
      valid.map((v) => v.keyVersion ?? null),
      valid.map((v) => v.reason),
      valid.map((v) => v.source),
      valid.map((v) => v.ttl),
      valid.map((v) => v.expiresAt),
    ];
    const input = `unnest($1::text[], $2::blacklist_type[], $3::text[], $4::smallint[], $5::text[], $6::text[], $7::int[], $8::timestamptz[]) AS u(kind, entry_type, value, key_version, reason, source, ttl, expires_at)`;
    const keyOf = (r: Row) => this.key(r.kind, r.entry_type, r.value, r.key_version ?? undefined);
    const { added, updated } = await this.bothOrNeither("import", async (client) => {
      await recordAs(client, { actor });
      const before = await client.query<Row>(`SELECT ${COLUMNS} FROM blacklist_entries b WHERE (b.kind, b.entry_type, b.value) IN (SELECT u.kind, u.entry_type, u.value FROM ${input}) FOR UPDATE`, params);
      const inserted = await client.query<Row>(
        `INSERT INTO blacklist_entries (kind, entry_type, value, key_version, reason, source, created_at, expires_at)
         SELECT u.kind, u.entry_type, u.value, u.key_version, u.reason, u.source, now(), coalesce(u.expires_at, now() + make_interval(secs => u.ttl)) FROM ${input}
         ON CONFLICT (kind, entry_type, value) DO NOTHING RETURNING ${COLUMNS}`,
        params,
      );
      const changed = await client.query<Row>(
        `UPDATE blacklist_entries b SET key_version = u.key_version, reason = u.reason, source = u.source,
           created_at = CASE WHEN b.expires_at <= now() OR b.reason IS DISTINCT FROM u.reason OR b.source IS DISTINCT FROM u.source THEN now() ELSE b.created_at END,
           expires_at = coalesce(u.expires_at, now() + make_interval(secs => u.ttl))
         FROM ${input}
         WHERE b.kind = u.kind AND b.entry_type = u.entry_type AND b.value = u.value
           AND (b.expires_at <= now() OR b.reason IS DISTINCT FROM u.reason OR b.source IS DISTINCT FROM u.source OR (u.expires_at IS NOT NULL AND date_trunc('milliseconds', b.expires_at) <> date_trunc('milliseconds', u.expires_at)))
         RETURNING ${COLUMNS.split(", ").map((c) => `b.${c}`).join(", ")}`,
        params,
      );
      const old = new Map(before.rows.map((r) => [keyOf(r), fromRow(r)]));
      const renewedExpired = changed.rows.filter((r) => !(old.get(keyOf(r))!.expiresAt.getTime() > Date.now())).length;
      const rows = [...inserted.rows, ...changed.rows].map(fromRow);
      return {
        result: { added: inserted.rows.length + renewedExpired, updated: changed.rows.length - renewedExpired },
        undo: inserted.rows.map(keyOf),
        redis: () => this.writeManyToRedis(rows, old),
      };
    });
    return { lines: lines.length, added, updated, unchanged: valid.length - added - updated, errors, applied: true };
  }

  /** One import line checked: its probe and fields, or its problems (each naming its field). */
  private importLine(fields: Record<string, unknown>, actor: string): (Probe & { reason: string; source: string; ttl: number | null; expiresAt: string | null; hashed: boolean }) | { problems: { field: string; problem: string }[] } {
    const result = importLineSchema.safeParse(fields);
    if (!result.success)
      return {
        problems: result.error.issues.flatMap((i) =>
          i.code === "unrecognized_keys"
            ? i.keys.map((k) => ({ field: k, problem: `is not a field of an entry (fields: ${Object.keys(importLineSchema.shape).join(", ")})` }))
            : [{ field: i.path.map(String).join(".") || "line", problem: i.message }],
        ),
      };
    const l = result.data;
    const problems: { field: string; problem: string }[] = [];
    if ((l.value === undefined) === (l.hash === undefined)) problems.push({ field: "value", problem: l.value === undefined ? "is required (or, for a card, hash with keyVersion)" : "give value or hash, not both" });
    if (l.hash !== undefined && l.type !== "card") problems.push({ field: "hash", problem: `only a card's entry has a hash (type is ${l.type})` });
    if (l.hash !== undefined && !this.keys.some((k) => k.version === l.keyVersion))
      problems.push({ field: "keyVersion", problem: `must be one of the card-hash key versions (${this.keys.map((k) => k.version).join(", ")}) with hash (got ${JSON.stringify(l.keyVersion ?? null)})` });
    if (l.hash === undefined && l.keyVersion !== undefined) problems.push({ field: "keyVersion", problem: "is given only with hash" });
    if (l.ttlSeconds !== undefined && l.expiresAt !== undefined) problems.push({ field: "expiresAt", problem: "give ttlSeconds or expiresAt, not both" });
    if (l.expiresAt !== undefined) {
      const at = Date.parse(l.expiresAt);
      if (!(at > Date.now())) problems.push({ field: "expiresAt", problem: `must be in the future (got ${l.expiresAt})` });
      else if (at > Date.now() + MAX_TTL_SECONDS * 1000) problems.push({ field: "expiresAt", problem: `must be within 365 days (got ${l.expiresAt})` });
    }
    const kind = l.kind ?? "block";
    let probe: Probe | undefined;
    if (l.hash !== undefined && l.type === "card") probe = { kind, type: "card", value: l.hash, keyVersion: l.keyVersion!, key: this.key(kind, "card", l.hash, l.keyVersion) };
    else if (l.value !== undefined) {
      try {
        probe = this.probesFor(kind, l.type, l.value, "value", true)[0];
      } catch (error) {
        if (!(error instanceof InvalidValueError)) throw error;
        problems.push({ field: "value", problem: error.problem });
      }
    }
    if (problems.length > 0 || !probe) return { problems };
    return {
      ...probe,
      reason: l.reason,
      source: l.source ?? actor,
      ttl: l.expiresAt === undefined ? (l.ttlSeconds ?? this.defaultTtlSeconds) : null,
      expiresAt: l.expiresAt ?? null,
      hashed: l.hash !== undefined,
    };
  }

  /**
   * Writes many entries to Redis (each key to the master owning its slot), then asks every master for a
   * replica's acknowledgement. When Redis refuses one, the keys already written are put back as `before`
   * had them (or deleted) and the refusal is thrown, so the caller's transaction rolls back.
   */
  private async writeManyToRedis(entries: readonly BlacklistEntry[], before: ReadonlyMap<string, BlacklistEntry>): Promise<void> {
    const written: string[] = [];
    try {
      for (let i = 0; i < entries.length; i += 500) {
        const chunk = entries.slice(i, i + 500);
        const outcomes = await Promise.allSettled(
          chunk.map(async (e) => {
            const key = this.key(e.kind, e.type, e.value, e.keyVersion);
            await this.redis.set(key, JSON.stringify(this.stored(e)), "PXAT", e.expiresAt.getTime());
            written.push(key);
          }),
        );
        const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
        if (failed) throw failed.reason;
      }
    } catch (error) {
      await Promise.allSettled(
        written.map((key) => {
          const old = before.get(key);
          return old && old.expiresAt.getTime() > Date.now() ? this.redis.set(key, JSON.stringify(this.stored(old)), "PXAT", old.expiresAt.getTime()) : this.redis.del(key);
        }),
      );
      throw new Error(`blacklist import: Redis refused: ${(error as Error).message}`, { cause: error });
    }
    const acks = await Promise.all(this.redis.nodes("master").map((node) => node.call("WAIT", "1", String(this.ackTimeoutMs)).then(Number, () => 0)));
    if (acks.some((n) => !(n >= 1))) throw new BlacklistWriteError(`blacklist import: stored in PostgreSQL and on the Redis masters, but not every master's replica confirmed within ${this.ackTimeoutMs} ms; retry (an import is idempotent)`);
  }

  /**
   * Every current entry (of a kind, of a type, or all) as lines of the bulk format, oldest first, read
   * in pages; a card as its keyed hash and key version (re-importable as is, never the number).
   */
  async *exportEntries(q: { format: BulkFormat; kind?: EntryKind; type?: BlacklistType }): AsyncGenerator<string> {
    const format = parse(formatSchema, { format: q.format }).format;
    if (q.type !== undefined || q.kind !== undefined) parse(z.object({ type: addSchema.shape.type.optional(), kind: kindSchema.optional() }), { type: q.type, kind: q.kind });
    const header = bulkHeader(format);
    if (header) yield header;
    for (let after = 0; ; ) {
      const { rows } = await this.db.query<Row & { id: string }>(
        `SELECT id, ${COLUMNS} FROM blacklist_entries WHERE expires_at > now() AND id > $1 AND ($2::text IS NULL OR kind = $2) AND ($3::blacklist_type IS NULL OR entry_type = $3) ORDER BY id LIMIT 1000`,
        [after, q.kind ?? null, q.type ?? null],
        { fresh: true },
      );
      if (rows.length === 0) return;
      yield rows
        .map((r) =>
          formatBulkLine(
            {
              kind: r.kind,
              type: r.entry_type,
              value: r.entry_type === "card" ? undefined : r.value,
              hash: r.entry_type === "card" ? r.value : undefined,
              keyVersion: r.key_version ?? undefined,
              reason: r.reason,
              source: r.source,
              ttlSeconds: undefined,
              expiresAt: r.expires_at.toISOString(),
            },
            format,
          ),
        )
        .join("");
      after = Number(rows[rows.length - 1]!.id);
    }
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
  private async bothOrNeither<T>(what: string, write: (client: pg.PoolClient) => Promise<{ result: T; undo?: readonly string[]; redis: () => Promise<void> }>): Promise<T> {
    let notReplicated: BlacklistWriteError | undefined;
    let redisTook = false;
    let undo: readonly string[] = [];
    let result: T;
    try {
      result = await this.db.transaction(async (client) => {
        const written = await write(client);
        const { result, redis } = written;
        undo = written.undo ?? [];
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
   * Removes every entry of the kind for the value (all key versions for a card); returns whether one
   * existed. `by` names who and why, for the history (default: the database user, the entry's own
   * reason), and the kind (default block).
   *
   * The order of the two writes is chosen so that a crash between them errs towards blocking:
   * - an allow entry leaves Redis first (inside the transaction; Redis refusing rolls PostgreSQL back),
   *   so a crash before the commit leaves it in PostgreSQL only, where it allows nothing until resync;
   * - a block entry leaves PostgreSQL first (committed), then Redis, so a crash or a Redis failure in
   *   between leaves the key blocking until this removal is retried (BlacklistWriteError says so; the
   *   retry deletes the key although the row is gone, and answers true).
   */
  async remove(type: BlacklistType, value: string, by: ChangeBy = {}): Promise<boolean> {
    const kind = parse(typeSchema, { type, kind: by.kind }).kind ?? "block";
    const probes = this.probesFor(kind, type, value, "value", false);
    const deleteRows = async (client: pg.PoolClient) => {
      await recordAs(client, by);
      const { rowCount } = await client.query(
        `DELETE FROM blacklist_entries WHERE kind = $1 AND (entry_type, value) IN (SELECT * FROM unnest($2::blacklist_type[], $3::text[]))`,
        [kind, probes.map((p) => p.type), probes.map((p) => p.value)],
      );
      return (rowCount ?? 0) > 0;
    };
    // One pipeline per key: a card's versions hash to different slots, possibly different masters.
    const deleteKeys = async () => (await Promise.all(probes.map((p) => this.confirmed(p.key, this.redis.pipeline().del(p.key), "remove")))).some((n) => Number(n) > 0);
    if (kind === "allow") return this.bothOrNeither("remove", async (client) => ({ result: await deleteRows(client), redis: async () => void (await deleteKeys()) }));
    const existed = await this.db.transaction(deleteRows);
    try {
      return (await deleteKeys()) || existed;
    } catch (error) {
      throw new BlacklistWriteError(`blacklist remove: removed from PostgreSQL, but Redis did not confirm the key's removal (${(error as Error).message}); it keeps blocking until this removal is retried`, { cause: error });
    }
  }

  /** Gives an existing entry a new time to live, counted from now (`by`: as for remove). */
  async changeTtl(type: BlacklistType, value: string, ttlSeconds: number, by: ChangeBy = {}): Promise<BlacklistEntry> {
    const kind = parse(typeSchema, { type, kind: by.kind }).kind ?? "block";
    parse(ttlSchema, { ttlSeconds });
    const probes = this.probesFor(kind, type, value, "value", false);
    return this.bothOrNeither("changeTtl", async (client) => {
      await recordAs(client, by);
      const { rows } = await client.query<Row>(
        `UPDATE blacklist_entries SET expires_at = now() + make_interval(secs => $4)
         WHERE kind = $1 AND (entry_type, value) IN (SELECT * FROM unnest($2::blacklist_type[], $3::text[])) AND expires_at > now()
         RETURNING ${COLUMNS}`,
        [kind, probes.map((p) => p.type), probes.map((p) => p.value), ttlSeconds],
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
  async history(q: { kind?: EntryKind; type?: BlacklistType; value?: string; limit?: number; after?: number } = {}): Promise<{ events: BlacklistEvent[]; next?: number }> {
    if (q.type !== undefined) parse(typeSchema, { type: q.type });
    if (q.kind !== undefined) parse(z.object({ kind: kindSchema }), { kind: q.kind });
    if (q.value !== undefined && q.type === undefined) throw new BlacklistInputError(["type: must be given with value (got nothing)"]);
    const limit = q.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new BlacklistInputError([`limit: must be an integer from 1 to 1000 (got ${JSON.stringify(q.limit)})`]);
    if (q.after !== undefined && (!Number.isInteger(q.after) || q.after < 0)) throw new BlacklistInputError([`after: must be a cursor returned as next (got ${JSON.stringify(q.after)})`]);
    const values = q.value !== undefined ? this.probesFor("block", q.type!, q.value, "value", false).map((p) => p.value) : null;
    const { rows } = await this.db.query<{ id: string; kind: EntryKind; entry_type: BlacklistType; value: string; key_version: number | null; action: BlacklistEvent["action"]; actor: string; reason: string; expires_at: Date; at: Date }>(
      `SELECT id, kind, entry_type, value, key_version, action, actor, reason, expires_at, at FROM blacklist_history
       WHERE ($1::blacklist_type IS NULL OR entry_type = $1) AND ($2::text[] IS NULL OR value = ANY($2)) AND id > $3 AND ($5::text IS NULL OR kind = $5)
       ORDER BY id LIMIT $4`,
      [q.type ?? null, values, q.after ?? 0, limit + 1, q.kind ?? null],
      { fresh: true },
    );
    const events = rows.slice(0, limit).map((r) => ({
      id: Number(r.id),
      kind: r.kind,
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

  /** Current entries of one type (of one kind, or both), oldest first, `limit` at a time; pass `next` back as `after`. */
  async list(type: BlacklistType, page: { kind?: EntryKind; limit?: number; after?: number } = {}): Promise<{ entries: (BlacklistEntry & { id: number })[]; next?: number }> {
    parse(typeSchema, { type, kind: page.kind });
    const limit = page.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new BlacklistInputError([`limit: must be an integer from 1 to 1000 (got ${JSON.stringify(page.limit)})`]);
    if (page.after !== undefined && (!Number.isInteger(page.after) || page.after < 0)) throw new BlacklistInputError([`after: must be a cursor returned as next (got ${JSON.stringify(page.after)})`]);
    const { rows } = await this.db.query<Row & { id: string }>(
      `SELECT id, ${COLUMNS} FROM blacklist_entries WHERE entry_type = $1 AND expires_at > now() AND id > $2 AND ($4::text IS NULL OR kind = $4) ORDER BY id LIMIT $3`,
      [type, page.after ?? 0, limit + 1, page.kind ?? null],
      { fresh: true },
    );
    const entries = rows.slice(0, limit).map((r) => ({ id: Number(r.id), ...fromRow(r) }));
    return rows.length > limit ? { entries, next: entries[entries.length - 1]!.id } : { entries };
  }

  /**
   * Is any of the given values listed? Answers from Redis, or from PostgreSQL when Redis cannot. An
   * allow entry of a value sets aside the block entries of that value (the same IP, e-mail or card);
   * blocks of the other values stand. Redis's word for an allow that sets a block aside is confirmed
   * with PostgreSQL (an allow key a crash left without its row, or one PostgreSQL cannot vouch for
   * now, sets nothing aside): a failure errs towards blocking.
   */
  async check(input: CheckInput): Promise<CheckResult> {
    const probes: Probe[] = [];
    for (const kind of ENTRY_KINDS) {
      if (input.ip !== undefined) probes.push(...this.probesFor(kind, "ip", input.ip, "ip", false));
      if (input.email !== undefined) probes.push(...this.probesFor(kind, "email", input.email, "email", false));
      if (input.card !== undefined) probes.push(...this.probesFor(kind, "card", input.card, "card", false));
    }
    if (probes.length === 0) throw new InvalidValueError("check", "give at least one of ip, email and card");
    this.counts.checks++;
    let found: BlacklistEntry[];
    let source: CheckResult["source"];
    try {
      // An allow entry only matters beside a block entry of its value, so the block keys are read first
      // and the allow keys only of the types a block matched: two GETs fewer per check in the common
      // case (nothing listed), a second round trip only for a listed value.
      const read = async (ps: readonly Probe[]) => (await Promise.all(ps.map((p) => this.redis.get(p.key)))).flatMap((json, i) => (json === null ? [] : [this.entryOf(ps[i]!, JSON.parse(json) as StoredEntry)]));
      found = await withTimeout(
        (async () => {
          const blocks = await read(probes.filter((p) => p.kind === "block"));
          const allows = probes.filter((p) => p.kind === "allow" && blocks.some((b) => b.type === p.type));
          return allows.length > 0 ? [...blocks, ...(await read(allows))] : blocks;
        })(),
        this.checkTimeoutMs,
        "blacklist check on Redis",
      );
      source = "redis";
    } catch (error) {
      this.counts.fallbacks++;
      this.lastFallback = { at: new Date(), reason: (error as Error).message };
      // No answer in time may be a hung master already replaced: re-read the slot map now rather than
      // at the next periodic refresh (ioredis runs one refresh at a time, so a burst costs one).
      this.redis.refreshSlotsCache();
      found = await this.checkDatabase(probes);
      source = "postgres";
    }
    const blocks = found.filter((e) => e.kind === "block");
    // As from Redis: only the allow entries of a type some block entry matched.
    let allowed = found.filter((e) => e.kind === "allow" && blocks.some((b) => b.type === e.type));
    if (source === "redis" && allowed.length > 0) allowed = await this.vouchedAllows(allowed);
    const overridden = blocks.filter((b) => allowed.some((a) => a.type === b.type));
    const matches = blocks.filter((b) => !overridden.includes(b));
    const result: CheckResult = { listed: matches.length > 0, matches, allowed, overridden, source };
    if (result.listed) this.counts.hits++;
    return result;
  }

  private entryOf(p: Probe, s: StoredEntry): BlacklistEntry {
    return { kind: p.kind, type: p.type, value: p.value, ...(s.k !== undefined ? { keyVersion: s.k } : {}), reason: s.r, source: s.s, createdAt: new Date(s.c), expiresAt: new Date(s.e) };
  }

  /** The allow entries PostgreSQL holds too (none when it cannot say). */
  private async vouchedAllows(allows: readonly BlacklistEntry[]): Promise<BlacklistEntry[]> {
    try {
      const { rows } = await this.db.query<{ entry_type: BlacklistType; value: string }>(
        `SELECT entry_type, value FROM blacklist_entries WHERE kind = 'allow' AND expires_at > now() AND (entry_type, value) IN (SELECT * FROM unnest($1::blacklist_type[], $2::text[]))`,
        [allows.map((a) => a.type), allows.map((a) => a.value)],
        { fresh: true },
      );
      return allows.filter((a) => rows.some((r) => r.entry_type === a.type && r.value === a.value));
    } catch {
      return [];
    }
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
          return this.redis.set(this.key(e.kind, e.type, e.value, e.keyVersion), JSON.stringify(this.stored(e)), "PXAT", e.expiresAt.getTime());
        }),
      );
      written += rows.length;
      after = Number(rows[rows.length - 1]!.id);
    }
  }

  stats(): BlacklistStats {
    return { ...this.counts, ...(this.lastFallback ? { lastFallback: { ...this.lastFallback } } : {}) };
  }

  private key(kind: EntryKind, type: BlacklistType, value: string, keyVersion?: number): string {
    const prefix = kind === "allow" ? this.allowPrefix : this.prefix;
    return type === "card" ? `${prefix}card:v${keyVersion}:${value}` : `${prefix}${type}:${value}`;
  }

  /** The keys to look at for a value: one for an IP or e-mail, one per key version for a card. */
  private probesFor(kind: EntryKind, type: BlacklistType, raw: string, field: string, forWrite: boolean): Probe[] {
    if (type === "ip") {
      const value = canonicalIp(raw, field);
      return [{ kind, type, value, key: this.key(kind, type, value) }];
    }
    if (type === "email") {
      const value = canonicalEmail(raw, field);
      return [{ kind, type, value, key: this.key(kind, type, value) }];
    }
    const digits = cardDigits(raw, field);
    return (forWrite ? [this.currentKey] : this.keys).map((k) => {
      const value = cardHash(digits, k);
      return { kind, type, value, keyVersion: k.version, key: this.key(kind, type, value, k.version) };
    });
  }

  private stored(e: BlacklistEntry): StoredEntry {
    return { r: e.reason, s: e.source, c: e.createdAt.getTime(), e: e.expiresAt.getTime(), ...(e.keyVersion !== undefined ? { k: e.keyVersion } : {}) };
  }

  private async writeToRedis(key: string, entry: BlacklistEntry): Promise<void> {
    await this.confirmed(key, this.redis.pipeline().set(key, JSON.stringify(this.stored(entry)), "PXAT", entry.expiresAt.getTime()), "write");
  }

  /**
   * Runs a write and `WAIT 1` in one pipeline: the pipeline goes to the master owning the key's slot,
   * so WAIT counts that master's replicas. Fails unless a replica acknowledged in time.
   */
  private async confirmed(key: string, pipeline: ReturnType<Cluster["pipeline"]>, what: string): Promise<unknown> {
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
    return results?.[0]?.[1];
  }

  private async checkDatabase(probes: readonly Probe[]): Promise<BlacklistEntry[]> {
    const sql = `SELECT ${COLUMNS} FROM blacklist_entries WHERE expires_at > now() AND (kind, entry_type, value) IN (SELECT * FROM unnest($1::text[], $2::blacklist_type[], $3::text[]))`;
    const params = [probes.map((p) => p.kind), probes.map((p) => p.type), probes.map((p) => p.value)];
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
