/**
 * Login sessions on the Redis Cluster (FR-013): a session expires 30 minutes after login by default,
 * enforced by Redis itself (`PX`), so every service instance sees the same sessions and none needs a
 * sweeper. Session ids are 256 random bits (base64url); data is JSON.
 */
import { randomBytes } from "node:crypto";
import type { Cluster } from "ioredis";
import { withTimeout } from "../timeout";

export interface SessionStoreOptions {
  /** Lifetime of a session after login (or after the last `touch`). @default 30 minutes */
  readonly ttlMs?: number;
  /** @default "sess:" */
  readonly keyPrefix?: string;
  /** How long an operation may wait for the cluster (a request must not hang while it re-forms). @default 1000 */
  readonly timeoutMs?: number;
}

export interface Session<T> {
  readonly id: string;
  readonly data: T;
  readonly expiresAt: Date;
}

/**
 * Ids this store issues (43 characters, 256 bits) and those the web frameworks' session libraries issue
 * (express-session, @fastify/session: 32 characters): URL-safe base64, at least 128 bits.
 */
const SESSION_ID = /^[A-Za-z0-9_-]{22,128}$/;

export class SessionStore<T = Record<string, unknown>> {
  readonly ttlMs: number;
  private readonly prefix: string;
  private readonly timeoutMs: number;

  constructor(
    private readonly redis: Cluster,
    options: SessionStoreOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 30 * 60 * 1000;
    if (!Number.isInteger(this.ttlMs) || this.ttlMs < 1) throw new RangeError(`ttlMs: must be a positive integer of milliseconds (got ${options.ttlMs})`);
    this.prefix = options.keyPrefix ?? "sess:";
    this.timeoutMs = options.timeoutMs ?? 1000;
  }

  /** Starts a session (at login); its id goes to the client, the data stays in Redis. */
  async create(data: T): Promise<Session<T>> {
    const id = randomBytes(32).toString("base64url");
    // NX: a collision of 256 random bits will not happen, but if it did it must not hijack a session.
    const ok = await this.bounded(this.redis.set(this.prefix + id, JSON.stringify(data), "PX", this.ttlMs, "NX"), "create");
    if (ok !== "OK") throw new Error("session id collision; try again");
    return { id, data, expiresAt: new Date(Date.now() + this.ttlMs) };
  }

  /**
   * Stores `data` under an id someone else issued (a framework's session library), for the full TTL from
   * now: a session library saves on every request it changes (or, rolling, touches) the session.
   */
  async save(id: string, data: T): Promise<void> {
    if (!SESSION_ID.test(id)) throw new RangeError("session id: must be 22 to 128 URL-safe base64 characters");
    await this.bounded(this.redis.set(this.prefix + id, JSON.stringify(data), "PX", this.ttlMs), "save");
  }

  /** The session's data, or undefined when it expired, was destroyed, or the id is malformed. */
  async get(id: string): Promise<T | undefined> {
    if (!SESSION_ID.test(id)) return undefined;
    const json = await this.bounded(this.redis.get(this.prefix + id), "read");
    return json === null ? undefined : (JSON.parse(json) as T);
  }

  /** Extends a live session by the full TTL from now (sliding expiry); false if it no longer exists. */
  async touch(id: string): Promise<boolean> {
    if (!SESSION_ID.test(id)) return false;
    return (await this.bounded(this.redis.pexpire(this.prefix + id, this.ttlMs), "touch")) === 1;
  }

  /** Ends a session (logout); false if there was none. */
  async destroy(id: string): Promise<boolean> {
    if (!SESSION_ID.test(id)) return false;
    return (await this.bounded(this.redis.del(this.prefix + id), "destroy")) === 1;
  }

  private bounded<R>(command: Promise<R>, what: string): Promise<R> {
    return withTimeout(command, this.timeoutMs, `session ${what}`);
  }
}
