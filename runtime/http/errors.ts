/**
 * The runtime's errors as HTTP answers, the same for every framework (the Fastify and Express adapters,
 * the reference service): a JSON body `{ "error": { "code", "field"?, "message" } }` with a stable code;
 * bad input is a 4xx naming the field, a dependency that cannot answer now (PostgreSQL unreachable, the
 * Redis Cluster down or slow, the broker gone) a 503 with Retry-After, anything else a 500 that says
 * nothing of the internals.
 */
import type { z } from "zod";
import { InputError, isUnavailable, NotFoundError, RETRY_AFTER_SECONDS, ShopfdsError, UnavailableError } from "../errors";

export { isUnavailable, RETRY_AFTER_SECONDS };

/** An answer decided by the application: status, stable code, message, the field at fault, headers. */
export class HttpError extends ShopfdsError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
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

/** A field path as the error body names it: `items.0.quantity`, or `root` for the whole input. */
export function fieldPath(path: readonly PropertyKey[], root = "body"): string {
  return path.map(String).join(".") || root;
}

/**
 * The answer for `error`, by family (runtime/errors.ts): HttpError as it says; NotFoundError 404 and
 * InputError 422, naming the field; UnavailableError (and a driver's "unavailable now") 503 with
 * Retry-After; anything else 500, saying nothing of the internals.
 */
export function errorResponse(error: unknown): ErrorResponse {
  if (error instanceof HttpError) {
    return { status: error.status, headers: error.headers, body: { error: { code: error.code, ...(error.field ? { field: error.field } : {}), message: error.message } }, unexpected: false };
  }
  if (error instanceof InputError) {
    return { status: error instanceof NotFoundError ? 404 : 422, headers: {}, body: { error: { code: error.code, field: error.field, message: error.publicMessage } }, unexpected: false };
  }
  if (isUnavailable(error)) {
    // A driver's error is answered as the family's base class would be.
    const family = error instanceof UnavailableError ? error : new UnavailableError("a driver reported its server unavailable");
    return {
      status: 503,
      headers: { "retry-after": String(family.retryAfterSeconds) },
      body: { error: { code: family.code, message: family.publicMessage } },
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
