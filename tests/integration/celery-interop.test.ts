/**
 * Layer 3: the TypeScript jobs runtime against Debian's real Celery 5.2 on the test stack's RabbitMQ:
 * tasks both ways with arguments and results intact, Celery's event monitor seeing the TypeScript
 * worker's heartbeats and task events, and `celery inspect` getting its answers.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { TaskProducer } from "../../runtime/jobs/producer";
import { Worker } from "../../runtime/jobs/worker";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { celery, celeryBackground, celeryEnv, python, type Background } from "../support/celery";
import { sleep, until } from "../support/databases";

const PREFIX = `t${process.pid}`;
const TS_HOST = `ts-${process.pid}@interop`;
const PY_HOST = `py-${process.pid}@interop`;
let outputs: StackOutputs;
let env: NodeJS.ProcessEnv;
let worker: Worker;
let producer: TaskProducer;
let pyWorker: Background | undefined;
let monitor: Background | undefined;
const ran: { args: unknown[]; kwargs: Record<string, unknown> }[] = [];

before(async () => {
  outputs = await loadStackOutputs();
  env = celeryEnv(outputs.rabbitmq.url, PREFIX);
  // Task events on from the start, as a Celery worker started with -E (the monitor below does not ask for them).
  worker = new Worker({ url: outputs.rabbitmq.url, hostname: TS_HOST, queue: `${PREFIX}.ts`, heartbeatSeconds: 1, taskEvents: true });
  worker.register("interop.ts_concat", (args, kwargs) => {
    ran.push({ args, kwargs });
    return { joined: (args as string[]).join(String(kwargs.sep ?? "")), ran_on: "typescript" };
  });
  await worker.start();
  producer = await TaskProducer.connect(outputs.rabbitmq.url);
});

after(async () => {
  await monitor?.stop();
  await pyWorker?.stop();
  await producer?.close();
  await worker?.stop();
});

describe("Celery interop (Debian python3-celery 5.2)", () => {
  it("a task sent from Python runs on the TypeScript worker; Python's get() returns its result", async () => {
    const out = await python(
      env,
      `import json; from celery_app import app
r = app.send_task("interop.ts_concat", args=["ab", "cd"], kwargs={"sep": "-"}, queue="${PREFIX}.ts")
print(json.dumps(r.get(timeout=20)))`,
    );
    assert.deepEqual(JSON.parse(out.trim().split("\n").pop()!), { joined: "ab-cd", ran_on: "typescript" });
    assert.deepEqual(ran.at(-1), { args: ["ab", "cd"], kwargs: { sep: "-" } });
  });

  it("a task sent from TypeScript runs on a Python Celery worker, arguments and result intact", async () => {
    pyWorker = celeryBackground(env, ["worker", "-c", "2", "-E", "--without-mingle", "--without-gossip", "-n", PY_HOST, "-Q", `${PREFIX}.py`, "--loglevel", "INFO"]);
    await until("the Python worker to be ready", 30_000, async () => /ready\./.test(pyWorker!.output()));
    const task = await producer.send("interop.py_multiply", [6, 7], { scale: 2 }, { queue: `${PREFIX}.py` });
    assert.deepEqual(await task.result(20_000), { product: 84, ran_on: "python" });
    await until("the Python worker to log the success", 5000, async () => new RegExp(`Task interop\\.py_multiply\\[${task.id}\\] succeeded`).test(pyWorker!.output()));
  });

  it("US3-4 (what Flower asks): celery inspect ping and active_queues get answers from the TypeScript worker", async () => {
    const ping = await celery(env, ["inspect", "ping", "-d", TS_HOST, "--timeout", "5"]);
    assert.match(ping, new RegExp(`${TS_HOST}: OK\\s+pong`));
    const queues = await celery(env, ["inspect", "active_queues", "-d", TS_HOST, "--timeout", "5", "--json"]);
    const parsed = JSON.parse(queues.trim().split("\n").pop()!) as Record<string, { name: string; durable: boolean }[]>;
    assert.deepEqual(parsed[TS_HOST]!.map((q) => [q.name, q.durable]), [[`${PREFIX}.ts`, true]]);
    const registered = JSON.parse((await celery(env, ["inspect", "registered", "-d", TS_HOST, "--timeout", "5", "--json"])).trim().split("\n").pop()!);
    assert.deepEqual(registered, { [TS_HOST]: ["interop.ts_concat"] });
    const stats = JSON.parse((await celery(env, ["inspect", "stats", "-d", TS_HOST, "--timeout", "5", "--json"])).trim().split("\n").pop()!);
    assert.equal(stats[TS_HOST].pool["max-concurrency"], 4);
    assert.equal(typeof stats[TS_HOST].total, "object");
    assert.equal(stats[TS_HOST].broker.virtual_host, "shopfds");
  });

  it("US3-4 (what Flower shows): Celery's event monitor (celery events --dump) sees the TypeScript worker's heartbeats and task events", async () => {
    monitor = celeryBackground(env, ["events", "--dump"]);
    await sleep(2500); // the monitor binds its queue; heartbeats come every second
    const task = await producer.send("interop.ts_concat", ["x", "y"], {}, { queue: `${PREFIX}.ts` });
    assert.deepEqual(await task.result(10_000), { joined: "xy", ran_on: "typescript" });
    await until("task events in the dump", 10_000, async () => monitor!.output().includes(`succeeded: interop.ts_concat(${task.id})`));
    const dump = monitor.output();
    assert.match(dump, new RegExp(`${TS_HOST} \\[[^\\]]+\\] heartbeat: .*active=`));
    for (const kind of ["received", "started", "succeeded"]) assert.match(dump, new RegExp(`${kind}: interop\\.ts_concat\\(${task.id}\\)`), kind);
    assert.doesNotMatch(dump, /Substantial drift/, "timestamps and utcoffset are right");
  });
});
