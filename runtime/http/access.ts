/**
 * The access line both web adapters write (http/fastify.ts, http/express.ts), one per request, with the
 * fields the Kibana dashboards read: method, status, path, route, duration (ECS event.duration is in
 * nanoseconds) and the request's labels; the request is counted in the metrics. Probes and scrapes
 * (/health*, /metrics) are counted but logged at debug level only. Never the query string or the body.
 * `log` is the adapter's `accessLogger(…)` (or a child of it with the request's trace): the line's shape is
 * fixed here, so its redaction needs only the label paths (observability/logger.ts ACCESS_REDACTED_PATHS).
 */
import type { Logger } from "pino";
import type { ServiceMetrics } from "../observability/metrics";

export interface AccessRecord {
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  /** The route pattern (`/orders/:id`), or `(no route)`. */
  readonly route: string;
  readonly status: number;
  readonly seconds: number;
  readonly labels: Readonly<Record<string, string>>;
}

export function logAccess(log: Logger, metrics: ServiceMetrics, r: AccessRecord): void {
  metrics.observeHttp(r.method, r.route, r.status, r.seconds);
  const quiet = r.route.startsWith("/health") || r.route === "/metrics";
  if (quiet && !log.isLevelEnabled("debug")) return;
  const line = {
    http: { request: { method: r.method }, response: { status_code: r.status } },
    url: { path: r.path },
    event: { duration: Math.round(r.seconds * 1e9) },
    labels: { route: r.route, ...r.labels },
  };
  if (quiet) log.debug(line, `${r.method} ${r.route} ${r.status}`);
  else log.info(line, `${r.method} ${r.route} ${r.status}`);
}
