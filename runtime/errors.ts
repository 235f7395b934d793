/**
 * The runtime's error families: every error the runtime throws extends one of these, so a caller
 * catches a family (`instanceof UnavailableError`) instead of matching names or messages, and the HTTP
 * mapping (http/errors.ts) answers by family: a new subclass is mapped without editing it.
 *
 *   ShopfdsError             the root: anything the runtime raised on purpose
 *   ├─ InputError            bad input, naming the field (HTTP 422); NotFoundError: what it names is absent (404)
 *   ├─ UnavailableError      a dependency cannot answer now; retry after `retryAfterSeconds` (HTTP 503)
 *   └─ ConfigurationError    the options or stack outputs a program was given are wrong (fix and restart)
 *
 * Errors of the drivers (pg, ioredis, amqplib) are not the runtime's classes; `isDriverUnavailable`
 * is the one place that recognises those that mean "the dependency is unavailable now".
 */

/** The root of the runtime's errors. `name` is the concrete class's name. */
export class ShopfdsError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input: `field` names it (`items.0.quantity`, `body` for the whole input). */
export class InputError extends ShopfdsError {
  /** The stable code of the HTTP answer. */
  readonly code: string = "INVALID_INPUT";
  constructor(
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** What the caller is told (the message, unless a subclass words it for the caller). */
  get publicMessage(): string {
    return this.message;
  }
}

/** The input names something that does not exist (HTTP 404). */
export class NotFoundError extends InputError {
  override readonly code: string = "NOT_FOUND";
}

/** Seconds a client is told to wait when a dependency is unavailable, unless the error says otherwise. */
export const RETRY_AFTER_SECONDS = 5;

/** A dependency cannot answer now (PostgreSQL, the Redis Cluster, the broker); the operation may be retried. */
export class UnavailableError extends ShopfdsError {
  readonly retryAfterSeconds: number;
  /** The stable code of the HTTP answer. */
  readonly code: string = "SERVICE_UNAVAILABLE";
  /** What the caller is told: nothing of the internals unless a subclass words it for the caller. */
  readonly publicMessage: string = "a service this request needs is unavailable; try again shortly";
  constructor(message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options);
    this.retryAfterSeconds = options?.retryAfterSeconds ?? RETRY_AFTER_SECONDS;
  }
}

/** The options or stack outputs a program was given are wrong; `problems` name each field. */
export class ConfigurationError extends ShopfdsError {
  constructor(
    message: string,
    readonly problems: readonly string[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const PG_UNAVAILABLE_CODES = ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENOTFOUND", "EAI_AGAIN"];

/**
 * A PostgreSQL error (node-postgres) that means the server cannot be used now: a socket error, an
 * SQLSTATE of class 08 (connection exception), 57P01–03 (shutdown, cannot connect now), 53300 (too many
 * connections), or pg's own timeouts.
 */
export function isPostgresUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  if (typeof e?.code === "string") {
    if (PG_UNAVAILABLE_CODES.includes(e.code)) return true;
    if (e.code.startsWith("08") || ["57P01", "57P02", "57P03", "53300"].includes(e.code)) return true;
  }
  return /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error/i.test(e?.message ?? "");
}

/** An ioredis cluster error that means the cluster cannot answer now (down, resharding, timing out, closed). */
export function isRedisUnavailable(error: unknown): boolean {
  const e = error as { name?: string; message?: string; previousErrors?: unknown[] };
  // A MULTI aborted because a command in it met a down cluster (EXECABORT) carries those errors.
  if (e?.previousErrors?.some(isDriverUnavailable)) return true;
  // OOM: a master at maxmemory under noeviction refuses writes (reads go on) until memory is freed.
  return /CLUSTERDOWN|TRYAGAIN|OOM command not allowed|timed out|Connection is closed|ClusterAllFailedError|MaxRetriesPerRequest|Failed to refresh slots cache/.test(`${e?.name ?? ""} ${e?.message ?? ""}`);
}

/** The one driver-error classifier: a pg or ioredis error meaning "unavailable now". */
export function isDriverUnavailable(error: unknown): boolean {
  return isPostgresUnavailable(error) || isRedisUnavailable(error);
}

/** Whether `error` means a dependency cannot answer now: the runtime's UnavailableError family or a driver's. */
export function isUnavailable(error: unknown): boolean {
  return error instanceof UnavailableError || isDriverUnavailable(error);
}
