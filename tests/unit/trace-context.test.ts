/**
 * The runtime's trace context with tracing off (no provider registered in this process) and the OTEL_*
 * settings: a task still carries on the trace context it came with, so its lines and follow-ups name the
 * caller's trace; the settings' errors name the variable and the value.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { trace } from "@opentelemetry/api";
import { extractTraceContext, injectTraceContext, traceFields, tracer } from "../../runtime/observability/trace-context";
import { startTracing, tracingOptionsFromEnv } from "../../runtime/tracing";

const CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

describe("trace context with tracing off", () => {
  it("a message's traceparent is the context its run logs and passes on", () => {
    const ctx = extractTraceContext({ traceparent: Buffer.from(CALLER) }); // AMQP may hand a header over as bytes
    assert.deepEqual(traceFields(trace.getSpan(ctx)), { trace: { id: "4bf92f3577b34da6a3ce929d0e0e4736" }, span: { id: "00f067aa0ba902b7" } });
    const run = tracer().startSpan("run/x", {}, ctx); // the API's no-op span keeps its parent's ids
    const headers: Record<string, unknown> = {};
    injectTraceContext(headers, trace.setSpan(ctx, run));
    assert.equal(headers.traceparent, CALLER);
  });

  it("no header, a malformed one or an all-zero trace id: no context, nothing injected", () => {
    for (const h of [{}, { traceparent: "garbage" }, { traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01" }]) {
      const ctx = extractTraceContext(h);
      assert.equal(traceFields(trace.getSpan(ctx)), undefined, JSON.stringify(h));
      const headers: Record<string, unknown> = {};
      injectTraceContext(headers, ctx);
      assert.deepEqual(headers, {});
    }
  });
});

describe("tracing settings (OTEL_*)", () => {
  it("off without a collector, or when disabled", () => {
    assert.equal(tracingOptionsFromEnv({}, "shopfds-service"), undefined);
    assert.equal(tracingOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" }, "s"), undefined);
    assert.equal(startTracing({ service: "s" }), undefined, "no endpoint and no processors: off");
  });

  it("the base endpoint gets /v1/traces; the traces endpoint is taken as it is; the name and ratio from their variables", () => {
    assert.deepEqual(tracingOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }, "shopfds-worker"), { service: "shopfds-worker", endpoint: "http://collector:4318/v1/traces" });
    assert.deepEqual(tracingOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://b/otlp/traces", OTEL_SERVICE_NAME: "fds", OTEL_TRACES_SAMPLER_ARG: "0.25", SHOPFDS_ENVIRONMENT: "production" }, "x"), {
      service: "fds",
      endpoint: "https://b/otlp/traces",
      sampleRatio: 0.25,
      environment: "production",
    });
  });

  it("a bad ratio or endpoint is refused, naming it", () => {
    assert.throws(() => tracingOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_TRACES_SAMPLER_ARG: "1.5" }, "x"), /OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1 \(got "1.5"\)/);
    assert.throws(() => startTracing({ service: "s", endpoint: "collector:4318" }), /tracing endpoint: must be an http\(s\) URL .*got "collector:4318"/);
    assert.throws(() => startTracing({ service: "s", endpoint: "not a url" }), /tracing endpoint: must be an http\(s\) URL .*got "not a url"/);
  });
});
