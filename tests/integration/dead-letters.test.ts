/**
 * Dead letters an operator can act on (runtime/jobs/dead-letters.ts), against the test stack's real
 * RabbitMQ: tasks that used their retries land there through the real worker; listing leaves the queue
 * as it was; a redrive sends a task back once, to its queue, with its retries reset and the reason kept;
 * purge empties it. The test reads its own copy of the dead letters: a queue of its own bound to the
 * dead-letter exchange beside `shopfds.dead`, so other tests' dead letters are neither seen nor purged.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import amqp, { type Channel, type ChannelModel } from "amqplib";
import { DeadLetterError, DeadLetters, redactTaskValue } from "../../runtime/jobs/dead-letters";
import { TaskProducer } from "../../runtime/jobs/producer";
import { DEAD_LETTER_EXCHANGE, DEAD_LETTER_ROUTING_KEY } from "../../runtime/jobs/topology";
import { Worker } from "../../runtime/jobs/worker";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { until } from "../support/databases";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";

const ROOT = path.resolve(__dirname, "../..");
const run = promisify(execFile);

const Q = `t${process.pid}.dlq-work`;
const DEAD = `t${process.pid}.dead`;
let outputs: StackOutputs;
let conn: ChannelModel;
let ch: Channel;
let producer: TaskProducer;
let dead: DeadLetters;
let worker: Worker | undefined;
/** Whether `flaky` fails: true until the cause is "fixed". */
let broken = true;
const runs: Record<string, number> = {};

before(async () => {
  outputs = await loadStackOutputs();
  conn = await amqp.connect(outputs.rabbitmq.url);
  ch = await conn.createChannel();
  await ch.assertQueue(Q, { durable: true });
  await ch.assertQueue(DEAD, { durable: true });
  await ch.bindQueue(DEAD, DEAD_LETTER_EXCHANGE, DEAD_LETTER_ROUTING_KEY);
  producer = await TaskProducer.connect(outputs.rabbitmq.url);
  dead = await DeadLetters.connect({ url: outputs.rabbitmq.url, queue: DEAD });
  worker = new Worker({ url: outputs.rabbitmq.url, queue: Q, hostname: `${Q}@dlq`, concurrency: 2, retryDelayMs: () => 50 });
  for (const name of ["flaky", "other"])
    worker.register(`${Q}.${name}`, async (args) => {
      const key = `${name}:${String(args[0])}`;
      runs[key] = (runs[key] ?? 0) + 1;
      if (broken) throw new Error(`upstream said no to ${String(args[0])}`);
      return "ok";
    });
  await worker.start();
});

after(async () => {
  await worker?.stop().catch(() => undefined);
  await dead?.close();
  await producer?.close();
  for (const q of [Q, DEAD]) await ch?.deleteQueue(q).catch(() => undefined);
  await conn?.close().catch(() => undefined);
});

describe("dead letters", () => {
  it("lists tasks that used their retries with the last error, the retries, the queue and redacted arguments, and leaves the queue as it was", async () => {
    await producer.send(`${Q}.flaky`, ["a", { email: "kim@example.com", note: "keep" }], {}, { queue: Q });
    await producer.send(`${Q}.flaky`, ["b", "kim@example.com"], {}, { queue: Q });
    await producer.send(`${Q}.other`, ["c"], {}, { queue: Q });
    await until("three dead letters", 30_000, async () => (await dead.count()) === 3);
    const before = await dead.list();
    assert.equal(before.length, 3);
    const a = before.find((d) => d.args[0] === "a")!;
    assert.equal(a.task, `${Q}.flaky`);
    assert.equal(a.queue, Q);
    assert.equal(a.retries, 3);
    assert.match(a.reason, /^failed after 4 attempts: Error: upstream said no to a$/);
    assert.deepEqual(a.args[1], { email: "[redacted]", note: "keep" });
    assert.deepEqual(before.find((d) => d.args[0] === "b")!.args, ["b", "[redacted]"]);
    assert.equal(runs["flaky:a"], 4, "four attempts, then dead");
    // Read again: the same letters in the same order, nothing taken.
    assert.deepEqual((await dead.list()).map((d) => d.id), before.map((d) => d.id));
    assert.equal(await dead.count(), 3);
    assert.deepEqual((await dead.list({ task: `${Q}.other` })).map((d) => d.args[0]), ["c"]);
    assert.equal((await dead.list({ limit: 1 })).length, 1);
  });

  it("redrives one task by id: it runs once more, from zero retries, and leaves the others where they are", async () => {
    broken = false;
    const [a] = (await dead.list()).filter((d) => d.args[0] === "a");
    const { redriven } = await dead.redrive({ ids: [a!.id] }, { reason: "upstream fixed", actor: "cli:test" });
    assert.deepEqual(redriven.map((d) => d.id), [a!.id]);
    await until("the redriven task ran", 10_000, async () => runs["flaky:a"] === 5);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(runs["flaky:a"], 5, "once");
    assert.deepEqual((await dead.list()).map((d) => d.args[0]).sort(), ["b", "c"]);
  });

  it("redrives by task name, bounded, and a task that fails again comes back with its redrive counted", async () => {
    broken = true;
    const { redriven } = await dead.redrive({ task: `${Q}.flaky` }, { reason: "one more try", actor: "admin@shopfds.test", limit: 5 });
    assert.deepEqual(redriven.map((d) => d.args[0]), ["b"]);
    await until("b dead again", 30_000, async () => (await dead.list({ task: `${Q}.flaky` })).length === 1);
    const b = (await dead.list({ task: `${Q}.flaky` }))[0]!;
    assert.equal(b.redriven, 1);
    assert.equal(runs["flaky:b"], 8, "four attempts, redriven, four more");
    const held = [];
    for (let m = await ch.get(DEAD); m; m = await ch.get(DEAD)) held.push(m);
    const raw = held.find((m) => (m.properties.headers ?? {}).id === b.id);
    for (const m of held) ch.nack(m, false, true);
    await ch.checkQueue(DEAD); // a round trip: the broker has put them back
    assert.equal((raw?.properties.headers ?? {})["x-shopfds-redrive-reason"], "admin@shopfds.test: one more try", "the reason travels with the task");
  });

  it("refuses a redrive without a reason or with an unbounded limit, naming the field", async () => {
    await assert.rejects(dead.redrive({ all: true }, { reason: " ", actor: "cli:test" }), (e: unknown) => e instanceof DeadLetterError && e.field === "reason");
    await assert.rejects(dead.redrive({ all: true }, { reason: "x", actor: "cli:test", limit: 1_000_000 }), (e: unknown) => e instanceof DeadLetterError && e.field === "limit" && /1 to 10000 \(got 1000000\)/.test(e.message));
    await assert.rejects(dead.redrive({ ids: [] }, { reason: "x", actor: "cli:test" }), (e: unknown) => e instanceof DeadLetterError && e.field === "ids");
    assert.equal(await dead.count(), 2, "nothing moved");
  });

  // The operator's command (`make dlq`), on the stack's own dead-letter queue, where copies of this
  // test's dead letters are too.
  it("the CLI lists as JSON, redrives a task name with the reason, and will not purge unconfirmed", async () => {
    const cli = (...args: string[]) => run(process.execPath, ["--import", "tsx", "runtime/cli/shopfds-runtime.ts", "dlq", ...args], { cwd: ROOT, env: process.env, timeout: 60_000 });
    const listed = JSON.parse((await cli("list", "--task", `${Q}.other`, "--json")).stdout) as { id: string; args: unknown[]; reason: string }[];
    assert.deepEqual(listed.map((d) => d.args), [["c"]]);
    assert.match(listed[0]!.reason, /upstream said no to c/);
    broken = false;
    const redrove = await cli("redrive", "--task", `${Q}.other`, "--reason", "fixed upstream");
    assert.match(redrove.stdout, new RegExp(`^redrove 1 task\\(s\\): ${Q.replace(/\./g, "\\.")}\\.other ${listed[0]!.id}$`, "m"));
    await until("c ran once more", 10_000, async () => runs["other:c"] === 5);
    await assert.rejects(cli("redrive", "--task", "x", "--all", "--reason", "r"), (e: { stderr: string }) => /exactly one of --id, --task or --all \(got --task, --all\)/.test(e.stderr));
    await assert.rejects(cli("purge"), (e: { stderr: string; code: number }) => e.code === 1 && /purge: \d+ dead letter\(s\) would go; run on a terminal to confirm, or pass --yes/.test(e.stderr));
    assert.deepEqual((await cli("list", "--task", `${Q}.other`, "--json")).stdout.trim(), "[]", "nothing purged; the redriven one gone");
    assert.equal(await dead.count(), 2, "this test's own copy untouched");
  });

  it("purges, returning how many went", async () => {
    assert.equal(await dead.purge(), 2);
    assert.equal(await dead.count(), 0);
    assert.deepEqual(await dead.list(), []);
  });
});

describe("redactTaskValue", () => {
  it("hides values under secret keys and e-mail or card shapes, nested, and keeps the rest", () => {
    assert.deepEqual(redactTaskValue({ to: "a@b.co", password: "x", items: [{ card: "4111", qty: 2 }, "4111 1111 1111 1111"], order: 17 }), {
      to: "[redacted]",
      password: "[redacted]",
      items: [{ card: "[redacted]", qty: 2 }, "[redacted]"],
      order: 17,
    });
  });
});
