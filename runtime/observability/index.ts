/** @shopfds/runtime/observability: ECS logs (pino), Prometheus metrics, Sentry. */
export { createLogger, REDACTED_PATHS, withTraceContext } from "./logger";
export type { LoggerOptions } from "./logger";
export { ServiceMetrics } from "./metrics";
export type { MetricsOptions } from "./metrics";
export { captureError, flushSentry, initSentry } from "./sentry";
export type { SentryOptions } from "./sentry";
