/**
 * The runtime's errors as HTTP answers, the same for every framework (the Fastify and Express adapters,
 * the reference service): a JSON body `{ "error": { "code", "field"?, "message" } }` with a stable code;
 * bad input is a 4xx naming the field, a dependency that cannot answer now (PostgreSQL unreachable, the
 * Redis Cluster down or slow, the broker gone) a 503 with Retry-After, anything else a 500 that says
 * nothing of the internals.
 */
import type { z } from "zod";
import { isConnectionError } from "../db/router";
import { BlacklistEntryNotFoundError, BlacklistInputError } from "../fds/blacklist";
import { InvalidValueError } from "../fds/canonical";

/** An answer decided by the application: status, stable code, message, the field at fault, headers. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export interface ErrorBody {
  readonly error: { readonly code: string; readonly field?: string; readonly message: string };
}

export interface ErrorResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: ErrorBody;
  /** Whether the error is the service's fault or a dependency's (log it, report it), not the caller's. */
  readonly unexpected: boolean;
}

/** Seconds a client is told to wait when a dependency is unavailable. */
export const RETRY_AFTER_SECONDS = 5;

/** A dependency that cannot answer now (PostgreSQL unreachable, Redis Cluster down or timing out, the broker gone). */
export function isUnavailable(error: unknown): boolean {
  if (isConnectionError(error) || (error as Error)?.name === "BrokerUnavailableError" || (error as Error)?.name === "BlacklistUnavailableError") return true;
  const e = error as { name?: string; message?: string; previousErrors?: unknown[] };
  // A MULTI aborted because a command in it met a down cluster (EXECABORT) carries those errors.
  if (e?.previousErrors?.some(isUnavailable)) return true;
  return /CLUSTERDOWN|TRYAGAIN|timed out|Connection is closed|ClusterAllFailedError|MaxRetriesPerRequest|Failed to refresh slots cache/.test(`${e?.name ?? ""} ${e?.message ?? ""}`);
}

/** A field path as the error body names it: `items.0.quantity`, or `root` for the whole input. */
export function fieldPath(path: readonly PropertyKey[], root = "body"): string {
  return path.map(String).join(".") || root;
}

/** Errors a service's own code throws for bad input, mapped by their `field` (422). */
function hasField(error: unknown): error is Error & { field: string } {
  return error instanceof InvalidValueError || (error instanceof Error && typeof (error as { field?: unknown }).field === "string" && error.name.endsWith("InputError"));
}

/** The answer for `error`. */
export function errorResponse(error: unknown): ErrorResponse {
  if (error instanceof HttpError) {
    return { status: error.status, headers: error.headers, body: { error: { code: error.code, ...(error.field ? { field: error.field } : {}), message: error.message } }, unexpected: false };
  }
  if (error instanceof BlacklistInputError) {
    const notFound = error instanceof BlacklistEntryNotFoundError;
    const first = error.problems[0] ?? "";
    const field = first.slice(0, Math.max(0, first.indexOf(":")));
    return { status: notFound ? 404 : 422, headers: {}, body: { error: { code: notFound ? "ENTRY_NOT_FOUND" : "INVALID_INPUT", field: !field || field === "(input)" ? "body" : field, message: error.problems.join("; ") } }, unexpected: false };
  }
  if (hasField(error)) return { status: 422, headers: {}, body: { error: { code: "INVALID_INPUT", field: error.field, message: error.message } }, unexpected: false };
  if (isUnavailable(error)) {
    return {
      status: 503,
      headers: { "retry-after": String(RETRY_AFTER_SECONDS) },
      body: { error: { code: "SERVICE_UNAVAILABLE", message: "a service this request needs is unavailable; try again shortly" } },
      unexpected: true,
    };
  }
  return { status: 500, headers: {}, body: { error: { code: "INTERNAL", message: "internal error" } }, unexpected: true };
}

/** `value` checked against a zod schema; a 400 naming the first field at fault otherwise. */
export function validate<T>(schema: z.ZodType<T>, value: unknown, root = "body"): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = fieldPath(issue.path, root);
  throw new HttpError(400, "INVALID_INPUT", `${field}: ${issue.message}`, field);
}
