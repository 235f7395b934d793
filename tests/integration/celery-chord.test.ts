/**
 * Chords both ways with Debian's Celery 5.2, counted in Celery's database result backend on the test
 * stack's PostgreSQL (runtime migration 0005, runtime/jobs/results.ts): Python's `chord(...)()` run by
 * the TypeScript worker (header and body, or a Python header with a TypeScript body, whose
 * `celery.chord_unlock` the TypeScript worker runs over Python's pickled results), and the TypeScript
 * producer's `chord()` run by a Python worker (Python's own chord_unlock reading the TypeScript
 * worker's pickled results). A failed header task fails the chord: the body does not run, it is
 * recorded as failed with a ChordError Python reads, and its errback gets its id.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { signature } from "../../runtime/jobs/canvas";
import { TaskProducer } from "../../runtime/jobs/producer";
import { PostgresTaskResults } from "../../runtime/jobs/results";
import { Worker } from "../../runtime/jobs/worker";
import { loadStackOutputs } from "../../runtime/outputs";
import { celeryEnv, python, startCeleryWorker, type Background } from "../support/celery";
import { createMigratedDatabase, until } from "../support/databases";

const PREFIX = `ch${process.pid}`;
/** The TypeScript worker's queue and the Python worker's. */
const [TS, PY] = [`${PREFIX}.ts`, `${PREFIX}.py`];
let env: NodeJS.ProcessEnv;
let pool: pg.Pool;
let results: PostgresTaskResults;
let drop: () => Promise<void>;
let worker: Worker;
let producer: TaskProducer;
let pyWorker: Background;
/** What each TypeScript task ran with, by the tag (its first argument, or the chord's results) it got. */
const ran: { task: string; args: unknown[]; id: string }[] = [];
const ranOf = (task: string) => ran.filter((r) => r.task === task);

before(async () => {
  const outputs = await loadStackOutputs();
  const db = await createMigratedDatabase(outputs, `chord_${process.pid}`);
  drop = db.drop;
  const { primary, user, password, database } = db.postgres;
  pool = new pg.Pool({ host: primary.host, port: primary.port, user, password, database, max: 4 });
  results = new PostgresTaskResults(pool);
  env = { ...celeryEnv(outputs.rabbitmq.url, PREFIX), RESULT_BACKEND: `db+postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${primary.host}:${primary.port}/${database}` };
  worker = new Worker({ url: outputs.rabbitmq.url, hostname: `ts-${PREFIX}@chord`, queue: TS, concurrency: 4, retryDelayMs: () => 50, maxRetries: 1, results });
  const record = (task: string) => (args: unknown[], _kwargs: unknown, ctx: { id: string }) => void ran.push({ task, args, id: ctx.id });
  worker.register("interop.ts_add", (args, kwargs, ctx) => {
    record("interop.ts_add")(args, kwargs, ctx);
    return (args[0] as number) + (args[1] as number);
  });
  worker.register("interop.ts_sum", (args, kwargs, ctx) => {
    record("interop.ts_sum")(args, kwargs, ctx);
    return (args[0] as number[]).reduce((a, b) => a + b, 0);
  });
  worker.register("interop.ts_fail", (args) => {
    throw new Error(`ts_fail(${String(args[0])})`);
  });
  worker.register("interop.ts_errback", (args, kwargs, ctx) => void record("interop.ts_errback")(args, kwargs, ctx));
  await worker.start();
  producer = await TaskProducer.connect(outputs.rabbitmq.url);
  pyWorker = await startCeleryWorker(env, { name: `py-${PREFIX}@chord`, queue: PY, concurrency: 2 });
});

after(async () => {
  await Promise.all([pyWorker?.stop(), producer?.close()]);
  await worker?.stop();
  await pool?.end();
  await drop?.();
});

/** The outcome Python's Celery reads for a task id from the database backend: state and repr(result). */
const pythonReads = async (id: string) => JSON.parse(await python(env, `import json; from celery_app import app\nr = app.AsyncResult("${id}")\nprint(json.dumps([r.state, repr(r.result)]))`)) as [string, string];

describe("Celery chords, Python → TypeScript worker", () => {
  it("a chord of TypeScript tasks: the body runs once, with the header's results in header order", async () => {
    const bodyId = (
      await python(env, `from celery import chord; from celery_app import app
s = lambda n, *a: app.signature(n, args=a, queue="${TS}")
print(chord([s("interop.ts_add", 1, 2), s("interop.ts_add", 30, 40), s("interop.ts_add", 500, 600)], s("interop.ts_sum")).apply_async().id)`)
    ).trim();
    await until("the chord's body", 15_000, async () => ranOf("interop.ts_sum").some((r) => r.id === bodyId));
    await new Promise((r) => setTimeout(r, 1500)); // one more unlock interval: nothing runs twice
    assert.deepEqual(ranOf("interop.ts_sum").filter((r) => r.id === bodyId).map((r) => r.args), [[[3, 70, 1100]]]);
  });

  it("a Python header with a TypeScript body: the TypeScript worker's chord_unlock reads Python's pickled results", async () => {
    const bodyId = (
      await python(env, `from celery import chord; from celery_app import app
py = lambda *a: app.signature("interop.py_add", args=a, queue="${PY}")
print(chord([py(1, 2), py(0.5, 0.25), py(-7, 2)], app.signature("interop.ts_sum", queue="${TS}")).apply_async().id)`)
    ).trim();
    await until("the chord's body", 20_000, async () => ranOf("interop.ts_sum").some((r) => r.id === bodyId));
    assert.deepEqual(ranOf("interop.ts_sum").find((r) => r.id === bodyId)!.args, [[3, 0.75, -5]]);
  });

  it("a failed header task fails the chord: no body, the body recorded as a ChordError (as Python reads it), its errback given the body's id", async () => {
    const bodyId = (
      await python(env, `from celery import chord; from celery_app import app
s = lambda n, *a: app.signature(n, args=a, queue="${TS}")
body = s("interop.ts_sum")
body.link_error(s("interop.ts_errback"))
print(chord([s("interop.ts_add", 1, 1), s("interop.ts_fail", 9)], body).apply_async().id)`)
    ).trim();
    await until("the body's errback", 15_000, async () => ranOf("interop.ts_errback").some((r) => r.args[0] === bodyId));
    assert.equal(ranOf("interop.ts_sum").filter((r) => r.id === bodyId).length, 0, "the body did not run");
    const [state, repr] = await pythonReads(bodyId);
    assert.equal(state, "FAILURE");
    assert.match(repr, /^ChordError\("Dependency [0-9a-f-]{36} raised Error\('ts_fail\(9\)'\)"\)$/);
  });
});

describe("Celery chords, TypeScript producer → Python worker", () => {
  it("a chord of Python tasks with a Python body: Python's chord_unlock takes the producer's messages", async () => {
    const sent = await producer.chord([signature("interop.py_add", [1, 2], {}, { queue: PY }), signature("interop.py_add", [3, 4], {}, { queue: PY })], signature("interop.py_sum", [100], {}, { queue: PY }));
    await until("the body's result", 20_000, async () => (await results.lookup([sent.bodyId])).get(sent.bodyId)?.status === "SUCCESS");
    assert.deepEqual((await results.lookup([sent.bodyId])).get(sent.bodyId)!.result, 110);
  });

  it("TypeScript header tasks with a Python body: Python reads the TypeScript worker's pickled results", async () => {
    const sent = await producer.chord([signature("interop.ts_add", [2 ** 40, 1], {}, { queue: TS }), signature("interop.ts_add", [-3, 1], {}, { queue: TS })], signature("interop.py_sum", [], {}, { queue: PY }));
    await until("the body's result", 20_000, async () => (await results.lookup([sent.bodyId])).get(sent.bodyId)?.status === "SUCCESS");
    assert.deepEqual(await pythonReads(sent.headerIds[0]!), ["SUCCESS", String(2 ** 40 + 1)]);
    assert.deepEqual(await pythonReads(sent.bodyId), ["SUCCESS", String(2 ** 40 - 1)]);
  });

  it("an empty header runs the body at once with an empty list", async () => {
    const sent = await producer.chord([], signature("interop.ts_sum", [], {}, { queue: TS }));
    await until("the body", 10_000, async () => ranOf("interop.ts_sum").some((r) => r.id === sent.bodyId));
    assert.deepEqual(ranOf("interop.ts_sum").find((r) => r.id === sent.bodyId)!.args, [[]]);
  });
});
