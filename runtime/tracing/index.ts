/**
 * OpenTelemetry tracing for a ShopFDS process (`@shopfds/runtime/tracing`): the SDK's tracer provider
 * with W3C trace context, an OTLP/HTTP exporter to the collector the stack names, and the field's
 * instrumentations for HTTP (node:http, under Fastify and Express alike), PostgreSQL (pg) and Redis
 * (ioredis). The runtime's own spans (task publish and run, Celery's names) come from `../observability/trace-context`.
 *
 * Off when no collector is configured: no provider is registered and nothing is patched, so the
 * runtime's spans are the API's no-ops. The instrumentations patch modules as they are required, so
 * start tracing before pg, ioredis or the web framework load: `import "@shopfds/runtime/tracing/register"`
 * as a process's first import (reads the OTEL_* environment), or call `startTracing` first thing.
 *
 * Sentry (`initSentry`) registers no OpenTelemetry provider of its own (@sentry/node 11's default,
 * `enableOpenTelemetrySetup: false`), so the two never compete.
 */
import { type Span } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { registerInstrumentations } from "@opentelemetry/instrumentation";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import { IORedisInstrumentation } from "@opentelemetry/instrumentation-ioredis";
import { PgInstrumentation } from "@opentelemetry/instrumentation-pg";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import { dbServerRole } from "../observability/trace-context";

export interface TracingOptions {
  /** `service.name` of the spans, e.g. shopfds-service, shopfds-worker. */
  readonly service: string;
  /** `deployment.environment.name`: dev, staging, production. */
  readonly environment?: string;
  readonly version?: string;
  /**
   * The collector's OTLP/HTTP traces URL (`http://collector:4318/v1/traces`). Without it and without
   * `spanProcessors`, tracing is off.
   */
  readonly endpoint?: string;
  /** Share of new traces kept (a trace a caller started keeps its caller's decision). @default 1 */
  readonly sampleRatio?: number;
  /** More span processors (a test's in-memory exporter); with them tracing is on even without an endpoint. */
  readonly spanProcessors?: readonly SpanProcessor[];
}

export interface Tracing {
  /** Sends what is buffered. */
  forceFlush(): Promise<void>;
  /** Sends what is buffered and stops (call before the process exits). */
  shutdown(): Promise<void>;
}

/** Paths never traced: probes and scrapes (a span per probe would be most of the traffic). */
const QUIET = /^\/(health(\/|$|\?)|metrics(\?|$))/;

/** Redis spans name the command only: keys hold session ids and blacklisted values, arguments hold data. */
const redisStatement = (command: string) => command;

/** For a service's own tests: keep the spans in memory (`spanProcessors: [new SimpleSpanProcessor(exporter)]`). */
export { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
export type { ReadableSpan, SpanProcessor } from "@opentelemetry/sdk-trace-base";

let started: Tracing | undefined;

/** Starts tracing (once per process; a second call returns the first). Undefined when it is off. */
export function startTracing(o: TracingOptions): Tracing | undefined {
  if (started) return started;
  const processors: SpanProcessor[] = [...(o.spanProcessors ?? [])];
  if (o.endpoint) {
    // A malformed endpoint fails here, naming it, not at the first export.
    const url = URL.canParse(o.endpoint) ? new URL(o.endpoint) : undefined;
    if (url?.protocol !== "http:" && url?.protocol !== "https:") throw new Error(`tracing endpoint: must be an http(s) URL of an OTLP/HTTP collector (got ${JSON.stringify(o.endpoint)})`);
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: url!.toString() })));
  }
  if (processors.length === 0) return undefined;
  const ratio = o.sampleRatio ?? 1;
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`tracing sampleRatio: must be a number from 0 to 1 (got ${String(o.sampleRatio)})`);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: o.service,
      ...(o.version ? { [ATTR_SERVICE_VERSION]: o.version } : {}),
      ...(o.environment ? { "deployment.environment.name": o.environment } : {}),
    }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }),
    spanProcessors: processors,
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({ ignoreIncomingRequestHook: (req) => QUIET.test(req.url ?? "") }),
      new PgInstrumentation({
        requireParentSpan: true, // the router's lag probes and pool checks outside any request make no traces
        ignoreConnectSpans: true, // a span per pool checkout doubles the spans and says nothing the query's does not
        requestHook: (span: Span, info) => {
          const role = dbServerRole(info.connection.host, info.connection.port);
          if (role) span.setAttribute("shopfds.db.role", role);
        },
      }),
      new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: redisStatement }),
    ],
  });
  started = {
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
  return started;
}

/**
 * The options the OTEL_* environment gives (the stacks set them): OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
 * else OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`; OTEL_SERVICE_NAME; OTEL_TRACES_SAMPLER_ARG (the
 * ratio of parentbased_traceidratio); OTEL_SDK_DISABLED=true turns it off.
 */
export function tracingOptionsFromEnv(env: NodeJS.ProcessEnv, fallbackService: string): TracingOptions | undefined {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === "true") return undefined;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || (base ? `${base.replace(/\/+$/, "")}/v1/traces` : undefined);
  if (!endpoint) return undefined;
  const ratioText = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  const ratio = ratioText ? Number(ratioText) : undefined;
  if (ratio !== undefined && !(ratio >= 0 && ratio <= 1)) throw new Error(`OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1 (got ${JSON.stringify(ratioText)})`);
  const environment = env.SHOPFDS_ENVIRONMENT;
  const version = env.SHOPFDS_RELEASE;
  return { service: env.OTEL_SERVICE_NAME?.trim() || fallbackService, endpoint, ...(ratio !== undefined ? { sampleRatio: ratio } : {}), ...(environment ? { environment } : {}), ...(version ? { version } : {}) };
}
