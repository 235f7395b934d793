/**
 * Error reporting to Sentry (@sentry/node): one Sentry project per environment (dev, staging,
 * production; the DSN comes from the stack), with the release and the user of the request on each
 * event. No personal data is sent by default: the user is identified by id only.
 */
import * as Sentry from "@sentry/node";

export interface SentryOptions {
  /** The project's DSN; without one nothing is sent (tests and machines without Sentry). */
  readonly dsn?: string;
  readonly environment: "dev" | "staging" | "production";
  /** The service's version, e.g. its git commit. */
  readonly release?: string;
  readonly service: string;
}

export function initSentry(o: SentryOptions): boolean {
  if (!o.dsn) return false;
  Sentry.init({
    dsn: o.dsn,
    environment: o.environment,
    ...(o.release ? { release: o.release } : {}),
    // No personal data or bodies (they may hold card numbers): only what the code sets on purpose.
    dataCollection: { userInfo: false, cookies: false, httpHeaders: false, httpBodies: [] },
    tracesSampleRate: 0,
    initialScope: { tags: { service: o.service } },
  });
  return true;
}

/** Reports an error with the request's user (by id) and extra tags; returns the event id. */
export function captureError(error: unknown, context: { userId?: string | number; tags?: Record<string, string> } = {}): string {
  return Sentry.withScope((scope) => {
    if (context.userId !== undefined) scope.setUser({ id: String(context.userId) });
    for (const [k, v] of Object.entries(context.tags ?? {})) scope.setTag(k, v);
    return Sentry.captureException(error);
  });
}

/** Waits until queued events are sent (before a process exits). */
export function flushSentry(timeoutMs = 2000): Promise<boolean> {
  return Sentry.flush(timeoutMs);
}
