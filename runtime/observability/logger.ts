/**
 * The services' logger: pino with Elastic's ECS formatter, so every line is ECS JSON that the Logstash
 * pipeline indexes as it is (`@timestamp`, `log.level`, `message`, `service.name`, `error.*`,
 * `trace.id`…). Secrets are redacted before a line is written.
 */
import { ecsFormat } from "@elastic/ecs-pino-format";
import pino, { type DestinationStream, type Logger } from "pino";
import { traceFields } from "./trace-context";

export interface LoggerOptions {
  /** `service.name`, e.g. `ecommerce`, `fds`, `worker`. */
  readonly service: string;
  /** `service.environment`: dev, staging, production. */
  readonly environment: string;
  readonly version?: string;
  /** @default "info" */
  readonly level?: pino.Level;
  /** @default standard output, asynchronous (see `stdout` below) */
  readonly destination?: DestinationStream;
}

/** Fields never written: passwords, tokens, cookies, card numbers (anywhere one level deep too). */
export const REDACTED_PATHS = [
  "password",
  "*.password",
  "token",
  "*.token",
  "card",
  "*.card",
  "cardNumber",
  "*.cardNumber",
  "req.headers.authorization",
  "req.headers.cookie",
  'res.headers["set-cookie"]',
];

export function createLogger(o: LoggerOptions): Logger {
  return pino(
    {
      level: o.level ?? "info",
      ...ecsFormat({ convertErr: true, convertReqRes: true, apmIntegration: false, serviceName: o.service, serviceEnvironment: o.environment, ...(o.version ? { serviceVersion: o.version } : {}) }),
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    },
    o.destination ?? stdout(),
  );
}

let shared: pino.DestinationStream | undefined;

/** Bytes of log lines gathered before they are written: about a dozen ECS access lines. */
export const LOG_BUFFER_BYTES = 4096;
/** What is gathered is written at least this often, however little: a quiet process's lines wait no longer. */
export const LOG_FLUSH_MS = 250;

/**
 * Standard output, written asynchronously in batches: a write once LOG_BUFFER_BYTES are gathered or
 * every LOG_FLUSH_MS, shared by every logger of the process so their lines never interleave. One write
 * per line cost a fifth of the service's throughput, and one per event-loop turn (sonic-boom's default)
 * still a write and two thread-pool wake-ups (futex) per request: 4 of the service's 23 system calls
 * per order (`BENCH_SYSCALLS=1 npm run bench -- service`). pino flushes it synchronously when the
 * process exits, on an uncaught exception too; a SIGKILL loses what is gathered (at most 4 KB, or
 * 250 ms of lines).
 */
function stdout(): pino.DestinationStream {
  shared ??= pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS });
  return shared;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/**
 * A request's trace as ECS `trace.id` and `span.id`, so a request's lines are found together in Kibana:
 * the active span's (tracing on: the HTTP server span, so the lines and the spans share one trace id),
 * else the caller's W3C `traceparent` header; none for a malformed header or none at all.
 */
export function traceContext(traceparent: string | undefined): pino.Bindings | undefined {
  const active = traceFields();
  if (active) return active;
  const m = traceparent ? TRACEPARENT.exec(traceparent.trim()) : null;
  return m ? { trace: { id: m[1] }, span: { id: m[2] } } : undefined;
}

/** `logger` with a request's trace fields (traceContext above), or the logger itself when it has none. */
export function withTrace(logger: Logger, fields: pino.Bindings | undefined): Logger {
  return fields ? logger.child(fields) : logger;
}

/** A child logger carrying a request's trace context, or the logger itself without one. */
export function withTraceContext(logger: Logger, traceparent: string | undefined): Logger {
  return withTrace(logger, traceContext(traceparent));
}

/**
 * The redaction of the access line (http/access.ts), whose shape is fixed: `http`, `url`, `event` with
 * fields of the runtime's own, and `labels`, the one place a handler puts values of its choosing. So
 * REDACTED_PATHS' keys ("password", "*.password"…) become `labels.password`…, and the nested header
 * paths, which the line never has, are dropped: pino's wildcard paths walked every key of every access
 * line, half of its cost (8 µs against 3.6 per line, measured with pino 10.4; a sixth of the service's
 * CPU per GET went to the access line).
 */
export const ACCESS_REDACTED_PATHS = [...new Set(REDACTED_PATHS.flatMap((p) => (/^(\*\.)?[A-Za-z_]\w*$/.test(p) ? [`labels.${p.replace(/^\*\./, "")}`] : [])))];

const accessLoggers = new WeakMap<Logger, Logger>();

/** The logger an adapter writes access lines with: `logger` with the access line's redaction (above), made once per logger. */
export function accessLogger(logger: Logger): Logger {
  let access = accessLoggers.get(logger);
  if (!access) {
    access = logger.child({}, { redact: { paths: ACCESS_REDACTED_PATHS, censor: "[redacted]" } });
    accessLoggers.set(logger, access);
  }
  return access;
}
