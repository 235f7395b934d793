/**
 * Message priority on a priority queue (x-max-priority 10, as the runtime's task queues are declared),
 * both ways with Debian's Celery 5.2 on the test stack's RabbitMQ: a backlog sent by the TypeScript
 * producer and by Python (`priority=`) runs highest first on the TypeScript worker, and a backlog the
 * TypeScript producer sent runs highest first on a Python worker. And the migration of an existing
 * queue to the new arguments (RabbitMQ cannot change them in place): every message kept, in order,
 * with its headers and bindings, refused while a consumer is attached, resumed after a crash.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import amqp from "amqplib";
import { migrateQueueArguments, QueueMigrationError } from "../../runtime/jobs/queue-migration";
import { TaskProducer } from "../../runtime/jobs/producer";
import { TASK_QUEUE_ARGUMENTS } from "../../runtime/jobs/topology";
import { Worker } from "../../runtime/jobs/worker";
import { loadStackOutputs } from "../../runtime/outputs";
import { celeryBackground, celeryEnv, python, type Background } from "../support/celery";
import { until } from "../support/databases";

const PREFIX = `qp${process.pid}`;
const OLD_ARGUMENTS = { "x-dead-letter-exchange": TASK_QUEUE_ARGUMENTS["x-dead-letter-exchange"], "x-dead-letter-routing-key": TASK_QUEUE_ARGUMENTS["x-dead-letter-routing-key"] };
const PRIORITY = { "x-max-priority": 10 };
let url: string;
let connection: amqp.ChannelModel;
let producer: TaskProducer;
const cleanup: (() => Promise<unknown>)[] = [];

before(async () => {
  url = (await loadStackOutputs()).rabbitmq.url;
  connection = await amqp.connect(url);
  producer = await TaskProducer.connect(url);
});

after(async () => {
  for (const undo of cleanup.reverse()) await undo().catch(() => undefined);
  const ch = await connection.createChannel();
  for (const q of ["mig", "mig.migrating", "ts", "py"]) await ch.deleteQueue(`${PREFIX}.${q}`).catch(() => undefined);
  await ch.deleteExchange(`${PREFIX}.x`).catch(() => undefined);
  await ch.deleteExchange(`${PREFIX}.ts`).catch(() => undefined);
  await ch.deleteExchange(`${PREFIX}.py`).catch(() => undefined);
  await producer?.close();
  await connection?.close();
});

describe("migrating a queue to new arguments", () => {
  const Q = `${PREFIX}.mig`;
  const X = `${PREFIX}.x`;

  it("keeps every message in order with its headers and bindings; a rerun does nothing; refused with a consumer; resumes after a crash", async () => {
    const ch = await connection.createConfirmChannel();
    await ch.assertExchange(X, "direct", { durable: false, autoDelete: false });
    await ch.assertQueue(Q, { durable: true, arguments: OLD_ARGUMENTS });
    await ch.bindQueue(Q, X, Q);
    for (let i = 0; i < 5; i++) ch.sendToQueue(Q, Buffer.from(`m${i}`), { headers: { task: "t", id: `id-${i}` }, deliveryMode: 2, correlationId: `id-${i}`, contentType: "application/json" });
    await ch.waitForConfirms();

    // With a consumer attached: refused, nothing moved.
    const consumer = await connection.createChannel();
    const { consumerTag } = await consumer.consume(Q, () => undefined, { noAck: false });
    await consumer.prefetch(0);
    await assert.rejects(migrateQueueArguments(connection, { queue: Q, arguments: TASK_QUEUE_ARGUMENTS }), (e: unknown) => e instanceof QueueMigrationError && /1 consumer\(s\) attached; stop the workers/.test(e.message));
    await consumer.cancel(consumerTag);
    await consumer.close();

    const lines: string[] = [];
    const result = await migrateQueueArguments(connection, { queue: Q, arguments: TASK_QUEUE_ARGUMENTS, bindings: [{ exchange: X, routingKey: Q }], log: (l) => lines.push(l) });
    assert.deepEqual(result, { migrated: true, moved: 5 });
    assert.match(lines.join("\n"), /moving 5 message\(s\)/);
    // The new arguments hold: declaring with them succeeds, declaring with the old ones is refused (406).
    const check = await connection.createChannel();
    await check.assertQueue(Q, { durable: true, arguments: { ...TASK_QUEUE_ARGUMENTS } });
    await check.close();
    const old = await connection.createChannel();
    old.on("error", () => undefined);
    await assert.rejects(old.assertQueue(Q, { durable: true, arguments: OLD_ARGUMENTS }), /PRECONDITION_FAILED/);
    // The binding came back with the queue.
    ch.publish(X, Q, Buffer.from("m5"), { headers: { task: "t", id: "id-5" } });
    await ch.waitForConfirms();
    const got: amqp.GetMessage[] = [];
    for (let m; (m = await ch.get(Q, { noAck: true })); ) got.push(m);
    assert.deepEqual(got.map((m) => [m.content.toString(), m.properties.headers?.id, m.properties.correlationId ?? null]), [...[0, 1, 2, 3, 4].map((i) => [`m${i}`, `id-${i}`, `id-${i}`]), ["m5", "id-5", null]]);
    assert.equal((await migrateQueueArguments(connection, { queue: Q, arguments: TASK_QUEUE_ARGUMENTS })).migrated, false, "a rerun does nothing");

    // A crash after the queue was re-declared, before its messages were moved back: the holding queue
    // still holds them, and a rerun finishes the move.
    await ch.assertQueue(`${Q}.migrating`, { durable: true });
    for (let i = 0; i < 3; i++) ch.sendToQueue(`${Q}.migrating`, Buffer.from(`held${i}`), { deliveryMode: 2 });
    await ch.waitForConfirms();
    assert.deepEqual(await migrateQueueArguments(connection, { queue: Q, arguments: TASK_QUEUE_ARGUMENTS }), { migrated: true, moved: 3 });
    assert.equal((await ch.checkQueue(Q)).messageCount, 3);
    await ch.close();
  });

  it("a worker started on a queue that still has the old arguments says to migrate it, and consumes once it is", async () => {
    const q = `${PREFIX}.old`;
    const ch = await connection.createChannel();
    await ch.assertQueue(q, { durable: true, arguments: OLD_ARGUMENTS });
    cleanup.push(() => connection.createChannel().then((c) => c.deleteQueue(q)));
    const worker = new Worker({ url, queue: q, queueArguments: { [q]: TASK_QUEUE_ARGUMENTS }, hostname: `old-${PREFIX}@prio` });
    await assert.rejects(worker.start(), /queue .*\.old exists with other arguments .*PRECONDITION_FAILED.*npx shopfds-runtime queues migrate/);
    await worker.stop().catch(() => undefined);
    assert.deepEqual(await migrateQueueArguments(connection, { queue: q, arguments: TASK_QUEUE_ARGUMENTS }), { migrated: true, moved: 0 });
    const again = new Worker({ url, queue: q, queueArguments: { [q]: TASK_QUEUE_ARGUMENTS }, hostname: `new-${PREFIX}@prio` });
    await again.start();
    assert.equal(again.consuming, true);
    await again.stop();
    await ch.close();
  });
});

describe("priorities under a backlog", () => {
  it("the TypeScript worker runs a backlog highest first, sent by the TypeScript producer and by Python's Celery", { timeout: 90_000 }, async () => {
    const Q = `${PREFIX}.ts`;
    const ch = await connection.createChannel();
    await ch.assertQueue(Q, { durable: true, arguments: PRIORITY });
    await ch.close();
    for (let i = 0; i < 10; i++) await producer.send("prio.job", [`ts-low-${i}`], {}, { queue: Q });
    for (let i = 0; i < 10; i++) await producer.send("prio.job", [`ts-high-${i}`], {}, { queue: Q, priority: 9 });
    // Celery's own message, its priority option: declared by Celery with the same arguments.
    await python(celeryEnv(url, PREFIX), `from celery_app import app
from kombu import Exchange, Queue
q = Queue("${Q}", Exchange("${Q}", type="direct"), routing_key="${Q}", queue_arguments={"x-max-priority": 10})
for i in range(5): app.send_task("prio.job", args=[f"py-low-{i}"], queue=q, priority=0)
for i in range(5): app.send_task("prio.job", args=[f"py-high-{i}"], queue=q, priority=9)`);
    const ran: string[] = [];
    const worker = new Worker({ url, hostname: `ts-${PREFIX}@prio`, queue: Q, queueArguments: { [Q]: PRIORITY }, concurrency: 1, prefetchMultiplier: 1 });
    worker.register("prio.job", (args) => void ran.push(String(args[0])));
    await worker.start();
    cleanup.push(() => worker.stop());
    await until("the backlog to run", 30_000, async () => ran.length === 30);
    assert.deepEqual(ran.slice(0, 15).map((r) => r.replace(/-\d+$/, "").replace(/^(ts|py)-/, "")), Array(15).fill("high"), ran.join(" "));
    assert.deepEqual(new Set(ran.slice(0, 15).map((r) => r.split("-")[0])), new Set(["ts", "py"]), "both producers' high-priority tasks first");
    assert.deepEqual(ran.filter((r) => r.startsWith("ts-low")), [...Array(10).keys()].map((i) => `ts-low-${i}`), "first in, first out within a priority");
  });

  it("a Python worker runs a backlog the TypeScript producer sent highest first", { timeout: 90_000 }, async () => {
    const Q = `${PREFIX}.py`;
    const env = { ...celeryEnv(url, PREFIX), PRIORITY_QUEUE: Q };
    const ch = await connection.createChannel();
    await ch.assertQueue(Q, { durable: true, arguments: PRIORITY });
    await ch.close();
    for (let i = 0; i < 8; i++) await producer.send("interop.py_add", [i, 0], {}, { queue: Q });
    for (let i = 0; i < 8; i++) await producer.send("interop.py_add", [1000 + i, 0], {}, { queue: Q, priority: 9 });
    const py: Background = celeryBackground(env, ["worker", "--pool", "solo", "--without-mingle", "--without-gossip", "-n", `py-${PREFIX}@prio`, "-Q", Q, "--loglevel", "INFO"]);
    cleanup.push(() => py.stop());
    const results = () => [...py.output().matchAll(/Task interop\.py_add\[[0-9a-f-]+\] succeeded in [0-9.]+s: (\d+)/g)].map((m) => Number(m[1]));
    await until("the Python worker to run the backlog", 60_000, async () => results().length === 16).catch((e: Error) => {
      throw new Error(`${e.message}; its output:\n${py.output().slice(-3000)}`);
    });
    const order = results();
    assert.deepEqual(order.slice(0, 8).every((n) => n >= 1000), true, order.join(" "));
    assert.deepEqual(order.slice(8), [0, 1, 2, 3, 4, 5, 6, 7]);
  });
});
