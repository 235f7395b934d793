/**
 * Trace context across TypeScript and Python tasks (Debian's python3-celery, the test stack's RabbitMQ),
 * with the runtime's tracing on in this process: a task sent by the TypeScript producer is a child of
 * its `apply_async` span, in a TypeScript worker (its run span, its ECS outcome line) and in a Python
 * worker (which gets the `traceparent` header on task.request, where opentelemetry-instrumentation-celery
 * reads it); a task Python sent with trace context (as that instrumentation injects it) continues in the
 * TypeScript worker, and the chain step it sends on carries the run's context to Python in turn.
 */
import { exporter } from "../support/in-memory-tracing";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { context, SpanKind, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "../../runtime/tracing";
import type pino from "pino";
import { createLogger } from "../../runtime/observability/logger";
import { TaskProducer } from "../../runtime/jobs/producer";
import { Worker } from "../../runtime/jobs/worker";
import { loadStackOutputs } from "../../runtime/outputs";
import { celeryEnv, python, startCeleryWorker, type Background } from "../support/celery";
import { until } from "../support/databases";

const PREFIX = `tr${process.pid}`;
/** The TypeScript worker's queue and the Python worker's. */
const [TS, PY] = [`${PREFIX}.ts`, `${PREFIX}.py`];
let env: NodeJS.ProcessEnv;
let worker: Worker;
let producer: TaskProducer;
let pyWorker: Background;
const lines: Record<string, unknown>[] = [];
/** The trace context each TypeScript run saw as active, by its first argument. */
const seen = new Map<unknown, { traceId: string; spanId: string }>();
let failures = 0;

const spans = () => exporter.getFinishedSpans();
const parentOf = (s: ReadableSpan) => (s as unknown as { parentSpanContext?: { spanId: string } }).parentSpanContext?.spanId ?? (s as unknown as { parentSpanId?: string }).parentSpanId;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

before(async () => {
  const outputs = await loadStackOutputs();
  env = celeryEnv(outputs.rabbitmq.url, PREFIX);
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger({ service: "tracing-test", environment: "dev", destination: sink as unknown as pino.DestinationStream });
  worker = new Worker({ url: outputs.rabbitmq.url, hostname: `ts-${PREFIX}@tracing`, queue: TS, retryDelayMs: () => 50, maxRetries: 1, logger });
  worker.register("interop.ts_traced", (args) => {
    const sc = trace.getActiveSpan()?.spanContext();
    if (sc) seen.set(args[0], { traceId: sc.traceId, spanId: sc.spanId });
    return args[0];
  });
  worker.register("interop.ts_flaky", (args) => {
    if (failures++ === 0) throw new Error("flaky the first time");
    return args[0];
  });
  await worker.start();
  producer = await TaskProducer.connect(outputs.rabbitmq.url);
  pyWorker = await startCeleryWorker(env, { name: `py-${PREFIX}@tracing`, queue: PY });
});

after(async () => {
  await Promise.all([pyWorker?.stop(), producer?.close()]);
  await worker?.stop();
});

describe("trace context in task headers", () => {
  it("TypeScript → TypeScript: the run span is the apply_async span's child, in the caller's trace, and the outcome line names it", async () => {
    const root = trace.getTracer("test").startSpan("POST /orders", { kind: SpanKind.SERVER });
    const sent = await context.with(trace.setSpan(context.active(), root), () => producer.send("interop.ts_traced", ["ts-1"], {}, { queue: TS }));
    root.end();
    await until("the TypeScript run span", 10_000, async () => spans().some((s) => s.name === "run/interop.ts_traced" && s.attributes["messaging.message.id"] === sent.id));
    const publish = spans().find((s) => s.name === "apply_async/interop.ts_traced" && s.attributes["messaging.message.id"] === sent.id)!;
    const run = spans().find((s) => s.name === "run/interop.ts_traced" && s.attributes["messaging.message.id"] === sent.id)!;
    assert.equal(publish.kind, SpanKind.PRODUCER);
    assert.equal(run.kind, SpanKind.CONSUMER);
    assert.equal(publish.spanContext().traceId, root.spanContext().traceId, "the publish is in the caller's trace");
    assert.equal(parentOf(publish), root.spanContext().spanId);
    assert.equal(run.spanContext().traceId, root.spanContext().traceId);
    assert.equal(parentOf(run), publish.spanContext().spanId, "the run continues the publish (the headers carried it)");
    assert.equal(run.attributes["celery.state"], "SUCCESS");
    // The handler ran inside the run span (its queries and sends are the run's children).
    assert.deepEqual(seen.get("ts-1"), { traceId: run.spanContext().traceId, spanId: run.spanContext().spanId });
    await until("the outcome line", 5_000, async () => lines.some((l) => (l.labels as Record<string, string> | undefined)?.task_id === sent.id));
    const line = lines.find((l) => (l.labels as Record<string, string> | undefined)?.task_id === sent.id)!;
    assert.deepEqual({ trace: line.trace, span: line.span, action: (line.event as { action: string }).action, task: (line.labels as Record<string, string>).task }, { trace: { id: run.spanContext().traceId }, span: { id: run.spanContext().spanId }, action: "task-succeeded", task: "interop.ts_traced" });
  });

  it("a retry is logged with its reason and the trace id, and runs again in the same trace", async () => {
    const sent = await producer.send("interop.ts_flaky", ["again"], {}, { queue: TS });
    await until("the retried run", 10_000, async () => spans().filter((s) => s.name === "run/interop.ts_flaky" && s.attributes["messaging.message.id"] === sent.id).length === 2);
    const runs = spans().filter((s) => s.name === "run/interop.ts_flaky" && s.attributes["messaging.message.id"] === sent.id);
    assert.deepEqual(runs.map((s) => s.attributes["celery.state"]), ["RETRY", "SUCCESS"]);
    assert.equal(new Set(runs.map((s) => s.spanContext().traceId)).size, 1, "both attempts in the send's trace");
    const retried = lines.find((l) => (l.event as { action?: string } | undefined)?.action === "task-retried" && (l.labels as Record<string, string>).task_id === sent.id)!;
    assert.ok(retried, "a task-retried line");
    assert.equal(retried["log.level"], "warn");
    assert.match(String(retried.message), /attempt 1 of 2 failed: Error: flaky the first time; retry 1 in 50 ms/);
    assert.equal((retried.trace as { id: string }).id, runs[0]!.spanContext().traceId);
    assert.equal((retried["error.message"] ?? (retried.error as { message?: string } | undefined)?.message), "flaky the first time");
  });

  it("TypeScript → Python: the Python task gets the apply_async span's traceparent on task.request", async () => {
    const sent = await producer.send("interop.py_traceparent", [], {}, { queue: PY });
    const traceparent = (await sent.result(20_000)) as string;
    const publish = spans().find((s) => s.name === "apply_async/interop.py_traceparent" && s.attributes["messaging.message.id"] === sent.id)!;
    const m = TRACEPARENT.exec(traceparent);
    assert.ok(m, `a W3C traceparent (got ${JSON.stringify(traceparent)})`);
    assert.deepEqual([m[1], m[2]], [publish.spanContext().traceId, publish.spanContext().spanId], "Python's instrumentation would continue the TypeScript trace from this span");
  });

  it("Python → TypeScript → Python: a task Python sent with trace context runs as its child, and the chain step it sends on carries the run's context", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parent = "00f067aa0ba902b7";
    await python(env, `from celery import chain; from celery_app import app
step = app.signature("interop.py_traceparent", queue="${PY}")
chain(app.signature("interop.ts_traced", args=("from-python",), queue="${TS}"), step).apply_async(headers={"traceparent": "00-${traceId}-${parent}-01"})`);
    await until("the TypeScript run span", 10_000, async () => spans().some((s) => s.name === "run/interop.ts_traced" && seen.has("from-python")));
    const run = spans().find((s) => s.name === "run/interop.ts_traced" && s.spanContext().spanId === seen.get("from-python")!.spanId)!;
    assert.equal(run.spanContext().traceId, traceId, "the TypeScript run continues the Python trace");
    assert.equal(parentOf(run), parent);
    // The chain's next step ran in Python and reports what it got: the TypeScript run's context.
    await until("the Python step", 20_000, async () => new RegExp(`interop\\.py_traceparent\\[[0-9a-f-]+\\] succeeded in [0-9.]+s: '00-${traceId}-${run.spanContext().spanId}-01'`).test(pyWorker.output()));
  });
});
