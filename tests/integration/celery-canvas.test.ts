/**
 * Celery's canvas across TypeScript and Python (Debian's python3-celery 5.2, the test stack's RabbitMQ):
 * chains, `link` callbacks and `link_error` errbacks sent by Python and run by the TypeScript worker,
 * sent by the TypeScript producer and run by a Python worker, and a chain that crosses between them at
 * every step. Each step's value is asserted where it ran (the TypeScript handlers record theirs; the
 * Python worker logs its results).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { signature } from "../../runtime/jobs/canvas";
import { TaskProducer } from "../../runtime/jobs/producer";
import { Worker } from "../../runtime/jobs/worker";
import { loadStackOutputs } from "../../runtime/outputs";
import { celeryEnv, python, startCeleryWorker, type Background } from "../support/celery";
import { until } from "../support/databases";

const PREFIX = `c${process.pid}`;
const TS = `${PREFIX}.ts`;
const PY = `${PREFIX}.py`;
let env: NodeJS.ProcessEnv;
let worker: Worker;
let producer: TaskProducer;
let pyWorker: Background;
/** What each TypeScript task ran with and returned, by the tag the test gave it. */
const ran: { task: string; args: unknown[]; result?: unknown }[] = [];
const ranWith = (task: string, first: unknown) => ran.filter((r) => r.task === task && r.args[0] === first);
const pyResult = (task: string, value: string) => new RegExp(`Task ${task.replace(/\./g, "\\.")}\\[[0-9a-f-]+\\] succeeded in [0-9.]+s: ${value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`);

before(async () => {
  const outputs = await loadStackOutputs();
  env = celeryEnv(outputs.rabbitmq.url, PREFIX);
  worker = new Worker({ url: outputs.rabbitmq.url, hostname: `ts-${PREFIX}@canvas`, queue: TS, retryDelayMs: () => 50, maxRetries: 1 });
  worker.register("interop.ts_add", (args) => {
    const result = (args[0] as number) + (args[1] as number);
    ran.push({ task: "interop.ts_add", args, result });
    return result;
  });
  worker.register("interop.ts_fail", (args) => {
    ran.push({ task: "interop.ts_fail", args });
    throw new Error(`ts_fail(${String(args[0])})`);
  });
  worker.register("interop.ts_errback", (args) => {
    ran.push({ task: "interop.ts_errback", args });
    return `errback for ${String(args[0])}`;
  });
  await worker.start();
  producer = await TaskProducer.connect(outputs.rabbitmq.url);
  pyWorker = await startCeleryWorker(env, { name: `py-${PREFIX}@canvas`, queue: PY, concurrency: 2 });
});

after(async () => {
  await pyWorker?.stop();
  await producer?.close();
  await worker?.stop();
});

describe("Celery canvas, Python → TypeScript worker", () => {
  it("a chain of three runs step by step, each getting the previous result first", async () => {
    await python(env, `from celery import chain; from celery_app import app
s = lambda *a: app.signature("interop.ts_add", args=a, queue="${TS}")
chain(s(1, 2), s(10), s(100)).apply_async()`);
    await until("the chain's last step", 15_000, async () => ranWith("interop.ts_add", 13).length === 1);
    assert.deepEqual(ranWith("interop.ts_add", 1).map((r) => r.result), [3]);
    assert.deepEqual(ranWith("interop.ts_add", 3).map((r) => r.args), [[3, 10]]);
    assert.deepEqual(ranWith("interop.ts_add", 13).map((r) => r.result), [113]);
  });

  it("link gets the result, an immutable link its own arguments only, and link_error the failed task's id", async () => {
    const out = await python(env, `from celery_app import app
ok = app.signature("interop.ts_add", args=(20, 1), queue="${TS}")
ok.link(app.signature("interop.ts_add", args=(1000,), queue="${TS}"))
ok.link(app.signature("interop.ts_add", args=(7, 7), queue="${TS}", immutable=True))
ok.apply_async()
bad = app.signature("interop.ts_fail", args=(5,), queue="${TS}")
bad.link_error(app.signature("interop.ts_errback", queue="${TS}"))
print(bad.apply_async().id)`);
    const failedId = out.trim().split("\n").pop()!;
    await until("the callbacks and the errback", 15_000, async () => ranWith("interop.ts_add", 21).length === 1 && ranWith("interop.ts_add", 7).length === 1 && ranWith("interop.ts_errback", failedId).length === 1);
    assert.deepEqual(ranWith("interop.ts_add", 21).map((r) => r.result), [1021]);
    assert.deepEqual(ranWith("interop.ts_add", 7).map((r) => r.args), [[7, 7]], "immutable: no result prepended");
    assert.equal(ranWith("interop.ts_fail", 5).length, 2, "the errback only after its retries");
  });
});

describe("Celery canvas, TypeScript producer → Python worker", () => {
  it("a chain, a link and a link_error sent from TypeScript run on Python Celery as Python's own would", async () => {
    await producer.send("interop.py_add", [1, 2], {}, { queue: PY, chain: [signature("interop.py_add", [10], {}, { queue: PY }), signature("interop.py_add", [100], {}, { queue: PY })] });
    await producer.send("interop.py_add", [40, 2], {}, { queue: PY, link: [signature("interop.py_add", [1000], {}, { queue: PY })] });
    const failed = await producer.send("interop.py_fail", [9], {}, { queue: PY, linkError: [signature("interop.py_errback", [], {}, { queue: PY })] });
    await until("Python ran every step", 20_000, async () => [pyResult("interop.py_add", "113"), pyResult("interop.py_add", "1042"), pyResult("interop.py_errback", `'errback for ${failed.id}'`)].every((re) => re.test(pyWorker.output())));
    assert.match(pyWorker.output(), pyResult("interop.py_add", "13"), "the middle step");
  });
});

describe("Celery canvas across both", () => {
  it("a chain alternating TypeScript and Python steps hands each result on", async () => {
    await python(env, `from celery import chain; from celery_app import app
chain(app.signature("interop.ts_add", args=(2, 3), queue="${TS}"), app.signature("interop.py_add", args=(50,), queue="${PY}"), app.signature("interop.ts_add", args=(500,), queue="${TS}")).apply_async()`);
    await until("the last, TypeScript step", 20_000, async () => ranWith("interop.ts_add", 55).length === 1);
    assert.match(pyWorker.output(), pyResult("interop.py_add", "55"), "Python's step got TypeScript's 5");
    assert.deepEqual(ranWith("interop.ts_add", 55).map((r) => r.result), [555]);
  });
});
