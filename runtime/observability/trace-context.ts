/**
 * The runtime's spans and their context, on `@opentelemetry/api` only: without a tracer provider (no
 * `startTracing`, or tracing off) every call here is the API's no-op and costs next to nothing. The SDK,
 * the exporter and the instrumentations live in `./tracing` (`@shopfds/runtime/tracing`).
 *
 * Task messages carry W3C trace context in their AMQP headers (`traceparent`, `tracestate`), where
 * Python's opentelemetry-instrumentation-celery puts it (`propagate.inject(headers)` in its
 * before_task_publish handler) and reads it back (`extract(task.request)`: Celery copies a message's
 * headers onto `task.request`). So a trace crosses TypeScript and Python tasks in both directions.
 */
import { context, isSpanContextValid, propagation, ROOT_CONTEXT, trace, type Context, type Span, type TextMapGetter, type TextMapPropagator } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

/** Instrumentation scope of the runtime's own spans. */
export const TRACER_NAME = "@shopfds/runtime";

export const tracer = () => trace.getTracer(TRACER_NAME);

const headerGetter: TextMapGetter<Readonly<Record<string, unknown>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    return typeof v === "string" ? v : Buffer.isBuffer(v) ? v.toString() : undefined;
  },
};

const w3c = new W3CTraceContextPropagator();
/**
 * The registered propagator, else W3C's: with tracing off a task still carries on the trace context it
 * came with (the API's no-op spans keep their parent's ids), so its log lines and follow-ups name the
 * caller's trace.
 */
const propagator = (): TextMapPropagator => (propagation.fields().length > 0 ? propagation : w3c);

/** Writes `ctx`'s trace context into message headers (nothing when there is no valid span). */
export function injectTraceContext(headers: Record<string, unknown>, ctx: Context = context.active()): void {
  propagator().inject(ctx, headers, { set: (carrier, key, value) => ((carrier as Record<string, unknown>)[key] = value) });
}

/** The context a message's headers carry, on the root context (a delivery is never a child of whatever ran before). */
export function extractTraceContext(headers: Readonly<Record<string, unknown>> | undefined): Context {
  return propagator().extract(ROOT_CONTEXT, headers ?? {}, headerGetter);
}

/** ECS `trace.id` / `span.id` of a span (or of the active one), when it is a real, valid span. */
export function traceFields(span: Span | undefined = trace.getActiveSpan()): { trace: { id: string }; span: { id: string } } | undefined {
  const sc = span?.spanContext();
  return sc && isSpanContextValid(sc) ? { trace: { id: sc.traceId }, span: { id: sc.spanId } } : undefined;
}

/**
 * Which PostgreSQL server each `host:port` is (primary, replica-1 …), filled by the router as it opens
 * its pools, so the pg instrumentation's spans say which server served a read (`shopfds.db.role`).
 */
const roles = new Map<string, string>();
export function registerDbServer(host: string, port: number, role: string): void {
  roles.set(`${host}:${port}`, role);
}
export function dbServerRole(host: string | undefined, port: number | undefined): string | undefined {
  return roles.get(`${host}:${port}`);
}

/**
 * Names the active HTTP server span after its route (`POST /orders/:id`, OpenTelemetry's HTTP span
 * name) and sets `http.route`: the http instrumentation, below any framework, knows only the method.
 */
export function nameServerSpan(method: string, route: string | undefined, span: Span | undefined = trace.getActiveSpan()): void {
  if (!route || route.startsWith("(") || !span?.isRecording()) return;
  span.updateName(`${method} ${route}`);
  span.setAttribute("http.route", route);
}
