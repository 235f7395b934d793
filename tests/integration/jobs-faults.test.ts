/**
 * Layer 3: the TypeScript worker's guarantees on the test stack's RabbitMQ, each on queues of this
 * file's own: a worker killed mid-task (the task is redelivered and its effect happens once), retries
 * then dead-lettering with the reason, malformed and unknown messages dead-lettered while the worker
 * keeps running, tasks waiting with no worker and completing in order once one starts, and graceful
 * stop. Every worker process a test starts is stopped by its PID.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import amqp, { type Channel, type ChannelModel, type GetMessage } from "amqplib";
import pg from "pg";
import { DEAD_LETTER_QUEUE } from "../../components/rabbitmq/render";
import { buildTaskMessage, encodeTaskMessage } from "../../runtime/jobs/protocol";
import { TaskFailedError, TaskProducer } from "../../runtime/jobs/producer";
import { Worker } from "../../runtime/jobs/worker";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { isAlive, stopPid } from "../../scripts/local-stack/process";
import { createMigratedDatabase, sleep, until } from "../support/databases";

const ROOT = path.resolve(__dirname, "../..");
const Q = `t${process.pid}`;
const tmp = mkdtempSync(path.join(tmpdir(), "shopfds-jobs-"));
const MARKER = path.join(tmp, "marker");
let outputs: StackOutputs;
let producer: TaskProducer;
let conn: ChannelModel;
let ch: Channel;
let db: pg.Pool;
let dropDb: () => Promise<void> = async () => undefined;
let databaseUrl = "";
const children: ChildProcess[] = [];
const workers: Worker[] = [];

function startWorkerProcess(queue: string, hostname: string): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "tests/support/worker-process.ts", outputs.rabbitmq.url, queue, hostname], {
    cwd: ROOT,
    env: { ...process.env, FAULT_DATABASE_URL: databaseUrl, FAULT_MARKER: MARKER },
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.push(child);
  return child;
}

const marker = () => readFileSync(MARKER, "utf8");

/** Takes the dead letter of one task id off the shared dead-letter queue, leaving the others. */
async function deadLetterOf(id: string, timeoutMs = 10_000): Promise<GetMessage> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const others: GetMessage[] = [];
    let found: GetMessage | undefined;
    for (let m = await ch.get(DEAD_LETTER_QUEUE); m; m = await ch.get(DEAD_LETTER_QUEUE)) {
      if ((m.properties.headers ?? {}).id === id || m.properties.correlationId === id) {
        found = m;
        break;
      }
      others.push(m);
    }
    for (const o of others) ch.nack(o, false, true);
    if (found) {
      ch.ack(found);
      return found;
    }
    await sleep(100);
  }
  throw new Error(`no dead letter for ${id} within ${timeoutMs} ms`);
}

async function startWorker(queue: string, setup: (w: Worker) => void, extra: Partial<ConstructorParameters<typeof Worker>[0]> = {}): Promise<Worker> {
  const w = new Worker({ url: outputs.rabbitmq.url, queue, hostname: `${queue}@faults`, retryDelayMs: () => 100, ...extra });
  setup(w);
  await w.start();
  workers.push(w);
  return w;
}

before(async () => {
  outputs = await loadStackOutputs();
  const created = await createMigratedDatabase(outputs, `shopfds_jobs_${process.pid}`);
  dropDb = created.drop;
  const p = created.postgres;
  databaseUrl = `postgres://${p.user}:${encodeURIComponent(p.password)}@${p.primary.host}:${p.primary.port}/${p.database}`;
  db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  await db.query("CREATE TABLE fault_attempts (task_id text, worker text, at timestamptz DEFAULT now())");
  await db.query("CREATE TABLE fault_effects (task_id text PRIMARY KEY)");
  writeFileSync(MARKER, "");
  producer = await TaskProducer.connect(outputs.rabbitmq.url);
  conn = await amqp.connect(outputs.rabbitmq.url);
  ch = await conn.createChannel();
  for (const q of ["kill", "acks", "retry", "poison", "order", "stop"]) await ch.assertQueue(`${Q}.${q}`, { durable: true });
});

after(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  for (const c of children) if (c.pid && isAlive(c.pid)) await stopPid(c.pid, "SIGKILL");
  for (const q of ["kill", "acks", "retry", "poison", "order", "stop"]) await ch?.deleteQueue(`${Q}.${q}`).catch(() => undefined);
  await producer?.close();
  await conn?.close().catch(() => undefined);
  await db?.end();
  await dropDb();
  rmSync(tmp, { recursive: true, force: true });
});

describe("TypeScript worker faults", () => {
  it("a worker SIGKILLed mid-task: the task is redelivered to another worker and its effect happens once", async () => {
    const first = startWorkerProcess(`${Q}.kill`, "first@faults");
    await until("first worker ready", 20_000, async () => marker().includes("ready first@faults"));
    const task = await producer.send("fault.effect", [], { sleepMs: 1500 }, { queue: `${Q}.kill` });
    await until("the task to start", 10_000, async () => marker().includes(`${task.id} started on first@faults`));
    await stopPid(first.pid!, "SIGKILL");
    assert.equal((await db.query("SELECT count(*)::int AS n FROM fault_effects")).rows[0].n, 0, "killed before its effect");

    startWorkerProcess(`${Q}.kill`, "second@faults");
    assert.equal(await task.result(20_000), "done");
    const attempts = (await db.query("SELECT worker FROM fault_attempts WHERE task_id = $1 ORDER BY at", [task.id])).rows.map((r) => r.worker);
    assert.deepEqual(attempts, ["first@faults", "second@faults"]);
    assert.equal((await db.query("SELECT count(*)::int AS n FROM fault_effects WHERE task_id = $1", [task.id])).rows[0].n, 1);
  });

  it("coalesced acks never cover an open task: killed after 60 quick tasks behind a long one, only the long one is redelivered", async () => {
    // The worker acks the tasks done in one event-loop turn with one basic.ack (multiple) up to the
    // lowest delivery still open. Here the open one is the first delivered: a multiple ack past it would
    // lose it with the worker; an ack not sent would redeliver the quick ones.
    const first = startWorkerProcess(`${Q}.acks`, "acks1@faults");
    await until("first worker ready", 20_000, async () => marker().includes("ready acks1@faults"));
    const long = await producer.send("fault.effect", [], { sleepMs: 30_000 }, { queue: `${Q}.acks` });
    await until("the long task to start", 10_000, async () => marker().includes(`${long.id} started on acks1@faults`));
    const quick = await Promise.all(Array.from({ length: 60 }, () => producer.send("fault.effect", [], { sleepMs: 0 }, { queue: `${Q}.acks` })));
    for (const t of quick) assert.equal(await t.result(20_000), "done");
    await sleep(500); // the last turn's acks on the wire
    await stopPid(first.pid!, "SIGKILL");
    startWorkerProcess(`${Q}.acks`, "acks2@faults");
    await until("the long task redelivered to the second worker", 20_000, async () => marker().includes(`${long.id} started on acks2@faults`));
    const attempts = async (ids: string[]) => (await db.query("SELECT task_id, count(*)::int AS n FROM fault_attempts WHERE task_id = ANY($1) GROUP BY task_id", [ids])).rows as { task_id: string; n: number }[];
    assert.deepEqual((await attempts([long.id])).map((r) => r.n), [2], "the open task was not acknowledged with the others");
    await sleep(1000); // time for any wrongly unacknowledged quick task to be redelivered and started
    const quickAttempts = await attempts(quick.map((t) => t.id));
    assert.equal(quickAttempts.length, 60);
    assert.deepEqual(quickAttempts.filter((r) => r.n !== 1), [], "every quick task ran once: all were acknowledged");
  });

  it("FR-021: a task that always fails is tried 4 times in all, then dead-lettered with its reason", async () => {
    let tries = 0;
    const outcomes: string[] = [];
    await startWorker(
      `${Q}.retry`,
      (w) =>
        w.register("fault.always_fails", () => {
          tries++;
          throw new RangeError(`attempt ${tries} failed`);
        }),
      { onTaskDone: (task, outcome) => outcomes.push(`${task}:${outcome}`) },
    );
    const task = await producer.send("fault.always_fails", [1], {}, { queue: `${Q}.retry` });
    await assert.rejects(task.result(15_000), (e: Error) => e instanceof TaskFailedError && e.excType === "RangeError" && /attempt 4 failed/.test(e.message));
    const dead = await deadLetterOf(task.id);
    assert.equal(tries, 4);
    assert.deepEqual(outcomes, [...Array(3).fill("fault.always_fails:retried"), "fault.always_fails:failed", "fault.always_fails:dead_lettered"], "what the metrics count");
    assert.equal(dead.properties.headers!["x-shopfds-reason"], "failed after 4 attempts: RangeError: attempt 4 failed");
    assert.equal(dead.properties.headers!.retries, 3);
    assert.deepEqual(JSON.parse(dead.content.toString()), [[1], {}, { callbacks: null, errbacks: null, chain: null, chord: null }], "the body is kept for replay");
  });

  it("dead-letters malformed messages and unknown tasks with the reason, and keeps running", async () => {
    await startWorker(`${Q}.poison`, (w) => w.register("fault.echo", (args) => args[0]));
    const publishRaw = (id: string, body: string, options: Record<string, unknown>) =>
      ch.sendToQueue(`${Q}.poison`, Buffer.from(body), { headers: { task: "fault.echo", id }, correlationId: id, ...options });
    publishRaw("no-content-type", JSON.stringify([[1], {}, {}]), {});
    publishRaw("two-element-body", JSON.stringify([[1], {}]), { contentType: "application/json" });
    publishRaw("bad-json", "[[1], {", { contentType: "application/json" });
    const unknown = encodeTaskMessage(buildTaskMessage("fault.no_such_task", [], {}, { id: "unknown-task" }));
    ch.sendToQueue(`${Q}.poison`, unknown.body, unknown.options);
    const reasons = {
      "no-content-type": "malformed message: content_type must be application/json (got null)",
      "two-element-body": "malformed message: body must be [args, kwargs, embed] (got an array of 2)",
      "bad-json": /^malformed message: body is not valid JSON: /,
      "unknown-task": "unknown task fault.no_such_task: this worker runs fault.echo",
    } as const;
    for (const [id, reason] of Object.entries(reasons)) {
      const reasonHeader = String((await deadLetterOf(id)).properties.headers!["x-shopfds-reason"]);
      if (typeof reason === "string") assert.equal(reasonHeader, reason, id);
      else assert.match(reasonHeader, reason, id);
    }
    const ok = await producer.send("fault.echo", ["still alive"], {}, { queue: `${Q}.poison` });
    assert.equal(await ok.result(5000), "still alive");
  });

  it("edge case (all workers down): with no worker running, tasks wait in the queue and all complete, in order, when one starts", async () => {
    const sent = [];
    for (let i = 0; i < 20; i++) sent.push(await producer.send("fault.record", [i], {}, { queue: `${Q}.order` }));
    assert.equal((await ch.checkQueue(`${Q}.order`)).messageCount, 20, "all 20 wait in the broker");
    const order: number[] = [];
    await startWorker(`${Q}.order`, (w) => w.register("fault.record", (args) => void order.push(args[0] as number)), { concurrency: 1 });
    await Promise.all(sent.map((t) => t.result(10_000)));
    assert.deepEqual(order, Array.from({ length: 20 }, (_, i) => i));
  });

  it("runs at least 4 tasks at once, and a graceful stop lets running tasks finish", async () => {
    let peak = 0;
    let now = 0;
    const w = await startWorker(`${Q}.stop`, (w) =>
      w.register("fault.slow", async () => {
        peak = Math.max(peak, ++now);
        await sleep(400);
        now--;
        return "finished";
      }),
    );
    const tasks = await Promise.all(Array.from({ length: 4 }, () => producer.send("fault.slow", [], {}, { queue: `${Q}.stop` })));
    await until("4 tasks running", 5000, async () => w.activeCount === 4);
    await w.stop();
    assert.equal(peak, 4);
    assert.deepEqual(await Promise.all(tasks.map((t) => t.result(5000))), ["finished", "finished", "finished", "finished"]);
    assert.equal((await ch.checkQueue(`${Q}.stop`)).messageCount, 0, "nothing left behind");
  });
});
