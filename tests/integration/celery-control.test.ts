/**
 * Layer 3: the TypeScript worker as a long-lived process meets its real Python peers (Debian's Celery
 * 5.2, kombu 5.2, py-amqp 5.1) on the test stack's RabbitMQ:
 * - every header the runtime writes decodes in py-amqp to the Python value meant, at each integer
 *   boundary (amqplib alone writes 128…32767 as a type py-amqp reads as a string);
 * - `celery inspect` and a Python worker *with mingle* beside a TypeScript worker whose Lamport clock is
 *   past 128 and past 32768 (the state a worker reaches after minutes and hours of heartbeats);
 * - the remote-control commands Flower's worker page offers, answered and acted on;
 * - scheduling edge cases: an eta past setTimeout's range, a far eta re-parked, expires checked at the eta;
 * - a malformed broadcast and a lost channel do not stop task consumption.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import amqp, { type ChannelModel } from "amqplib";
import { typedTable } from "../../runtime/jobs/amqp-table";
import { TaskFailedError, TaskProducer } from "../../runtime/jobs/producer";
import { Worker } from "../../runtime/jobs/worker";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { rabbitOptions, profile } from "../../scripts/local-stack/stack";
import { rabbitPassword } from "../../scripts/local-stack/rabbitmq";
import { celery, celeryBackground, celeryEnv, python, type Background } from "../support/celery";
import { sleep, until } from "../support/databases";

const PREFIX = `ctl${process.pid}`;
const TS_HOST = `ts-ctl-${process.pid}@interop`;
const PY_HOST = `py-ctl-${process.pid}@interop`;
let outputs: StackOutputs;
let env: NodeJS.ProcessEnv;
let worker: Worker;
let producer: TaskProducer;
let conn: ChannelModel;
let pyWorker: Background | undefined;
const ran: string[] = [];
const workers: Worker[] = [];
const lastJson = (out: string) => JSON.parse(out.trim().split("\n").pop()!);

/** py-amqp's reading of a header table: [python type name, value] at every leaf. */
async function throughPyAmqp(queue: string): Promise<unknown> {
  const u = new URL(outputs.rabbitmq.url);
  const out = await python(
    env,
    `import amqp, json
def t(v):
    if isinstance(v, dict): return {k: t(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)): return [t(x) for x in v]
    return [type(v).__name__, v.decode() if isinstance(v, bytes) else v]
c = amqp.Connection(host="${u.hostname}:${u.port}", userid="${decodeURIComponent(u.username)}", password="${decodeURIComponent(u.password)}", virtual_host="${decodeURIComponent(u.pathname.slice(1))}")
c.connect()
ch = c.channel()
m = ch.basic_get(queue="${queue}", no_ack=True)
print(json.dumps(t(m.properties["application_headers"])))
c.close()`,
  );
  return lastJson(out);
}

before(async () => {
  outputs = await loadStackOutputs();
  env = celeryEnv(outputs.rabbitmq.url, PREFIX);
  producer = await TaskProducer.connect(outputs.rabbitmq.url);
  conn = await amqp.connect(outputs.rabbitmq.url);
  worker = new Worker({ url: outputs.rabbitmq.url, hostname: TS_HOST, queue: `${PREFIX}.ts`, heartbeatSeconds: 1, concurrency: 1, holdHorizonMs: 700, maxReconnectDelayMs: 300 });
  worker.register("ctl.echo", async (args) => {
    ran.push(String(args[0]));
    await sleep(Number(args[1] ?? 0));
    return args[0];
  });
  worker.register("ctl.slow", () => sleep(5000).then(() => "late"));
  await worker.start();
  workers.push(worker);
});

after(async () => {
  await pyWorker?.stop();
  for (const w of workers) await w.stop().catch(() => undefined);
  const ch = await conn?.createChannel().catch(() => undefined);
  for (const q of [`${PREFIX}.ts`, `${PREFIX}.types`, `${PREFIX}.extra`, `${PREFIX}.py`, `${PREFIX}.other`]) await ch?.deleteQueue(q).catch(() => undefined);
  await conn?.close().catch(() => undefined);
  await producer?.close();
});

describe("AMQP header types as py-amqp reads them", () => {
  it("every integer boundary, floats, negatives and nested values decode to the same Python values", async () => {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(`${PREFIX}.types`, { durable: false });
    const values = { b127: 127, b128: 128, s32767: 32767, s32768: 32768, i2p31m1: 2 ** 31 - 1, i2p31: 2 ** 31, big: 2 ** 40, neg1: -1, neg129: -129, negInt32: -(2 ** 31), negBeyond: -(2 ** 31) - 1, half: 1.5, text: "é", yes: true, none: null, nested: { list: [128, 32768, { deep: 40000 }], clock: 200 } };
    ch.sendToQueue(`${PREFIX}.types`, Buffer.from("{}"), { headers: typedTable(values) });
    await ch.waitForConfirms();
    assert.deepEqual(await throughPyAmqp(`${PREFIX}.types`), {
      b127: ["int", 127],
      b128: ["int", 128],
      s32767: ["int", 32767],
      s32768: ["int", 32768],
      i2p31m1: ["int", 2 ** 31 - 1],
      i2p31: ["int", 2 ** 31],
      big: ["int", 2 ** 40],
      neg1: ["int", -1],
      neg129: ["int", -129],
      negInt32: ["int", -(2 ** 31)],
      negBeyond: ["float", -(2 ** 31) - 1], // no signed 64-bit type both sides read alike: a float of equal value
      half: ["float", 1.5],
      text: ["str", "é"],
      yes: ["bool", true],
      none: ["NoneType", null],
      nested: { list: [["int", 128], ["int", 32768], { deep: ["int", 40000] }], clock: ["int", 200] },
    });
    await ch.close();
  });

  it("the producer's task headers (retries past 127 and 32767, timelimit) decode as Celery's own", async () => {
    const ch = await conn.createChannel();
    await ch.assertQueue(`${PREFIX}.types`, { durable: false });
    await producer.send("ctl.echo", ["x"], {}, { queue: `${PREFIX}.types`, retries: 40000 });
    await until("the task in the queue", 5000, async () => (await ch.checkQueue(`${PREFIX}.types`)).messageCount === 1);
    const h = (await throughPyAmqp(`${PREFIX}.types`)) as Record<string, unknown>;
    assert.deepEqual([h.retries, h.timelimit, h.group_index, h.ignore_result], [["int", 40000], [["NoneType", null], ["NoneType", null]], ["NoneType", null], ["bool", false]]);
    await ch.close();
  });
});

describe("a long-lived TypeScript worker among Python peers", () => {
  for (const clock of [200, 40_000]) {
    it(`celery inspect ping/stats/clock work with the worker's clock past ${clock > 32767 ? 32768 : 128}`, async () => {
      worker.mergeClock(clock); // a long-lived worker: its clock is past clock
      const ping = await celery(env, ["inspect", "ping", "-d", TS_HOST, "--timeout", "5"]);
      assert.match(ping, new RegExp(`${TS_HOST}: OK\\s+pong`));
      const stats = lastJson(await celery(env, ["inspect", "stats", "-d", TS_HOST, "--timeout", "5", "--json"]));
      assert.ok(Number(stats[TS_HOST].clock) > clock, "the clock went on from there");
      assert.deepEqual(Object.keys(stats[TS_HOST].pool.writes).sort(), ["all", "avg", "inqueues", "raw", "strategy", "total"]);
    });
  }

  it("a Debian Celery worker started with mingle beside it comes up and takes the TypeScript worker's revoked ids (mingle reads its hello reply)", async () => {
    worker.mergeClock(40_000); // a long-lived worker: its clock is past 40_000
    const revokedId = "5b0f5a3e-9d7c-4c1e-8f7a-3a2b1c0d9e8f";
    worker.revoke([revokedId]);
    pyWorker = celeryBackground(env, ["worker", "-c", "1", "-n", PY_HOST, "-Q", `${PREFIX}.py`, "--loglevel", "INFO"]);
    await until("the Python worker to be ready", 30_000, async () => /ready\./.test(pyWorker!.output()) || pyWorker!.child.exitCode !== null);
    assert.doesNotMatch(pyWorker.output(), /Unrecoverable error|IndexError/);
    assert.match(pyWorker.output(), /mingle: sync with \d+ nodes|mingle: all alone/);
    const both = lastJson(await celery(env, ["inspect", "ping", "--timeout", "3", "--json"]));
    assert.ok(both[TS_HOST] && both[PY_HOST], `both answer: ${JSON.stringify(Object.keys(both))}`);
    const pyRevoked = lastJson(await celery(env, ["inspect", "revoked", "-d", PY_HOST, "--timeout", "3", "--json"]))[PY_HOST] as string[];
    assert.ok(pyRevoked.includes(revokedId), `the Python worker took the revoked id in mingle: ${JSON.stringify(pyRevoked)}`);
    await pyWorker.stop();
    pyWorker = undefined;
  });
});

describe("remote control (what Flower's worker page sends)", () => {
  const control = async (args: string[]) => celery(env, ["control", ...args, "-d", TS_HOST, "--timeout", "5", "--json"]).then(lastJson);

  it("revoke: a scheduled (countdown) task is revoked from Python and never runs; revoked lists it", async () => {
    const task = await producer.send("ctl.echo", ["revoke-me"], {}, { queue: `${PREFIX}.ts`, countdown: 2 });
    await until("the task held until its eta", 5000, async () => JSON.stringify(lastJson(await celery(env, ["inspect", "scheduled", "-d", TS_HOST, "--timeout", "3", "--json"]))).includes(task.id));
    const reply = await python(env, `import json; from celery_app import app\nprint(json.dumps(app.control.revoke("${task.id}", destination=["${TS_HOST}"], reply=True, timeout=3)))`);
    assert.deepEqual(lastJson(reply), [{ [TS_HOST]: { ok: `tasks ${task.id} flagged as revoked` } }]);
    await assert.rejects(task.result(5000), (e: unknown) => e instanceof TaskFailedError && e.excType === "TaskRevokedError");
    assert.ok(!ran.includes("revoke-me"));
    assert.ok((lastJson(await celery(env, ["inspect", "revoked", "-d", TS_HOST, "--timeout", "3", "--json"]))[TS_HOST] as string[]).includes(task.id));
    // A revoked id that arrives later is discarded too.
    const again = await producer.send("ctl.echo", ["revoke-me"], {}, { queue: `${PREFIX}.ts`, id: task.id });
    await assert.rejects(again.result(5000), /TaskRevokedError/);
    assert.ok(!ran.includes("revoke-me"));
  });

  it("reserved lists tasks received while the pool is busy", async () => {
    const busy = await producer.send("ctl.echo", ["busy", 1500], {}, { queue: `${PREFIX}.ts` });
    const waiting = await producer.send("ctl.echo", ["waiting"], {}, { queue: `${PREFIX}.ts` });
    await until("the second task reserved", 3000, async () => JSON.stringify(lastJson(await celery(env, ["inspect", "reserved", "-d", TS_HOST, "--timeout", "3", "--json"]))).includes(waiting.id));
    assert.deepEqual([await busy.result(5000), await waiting.result(5000)], ["busy", "waiting"]);
  });

  it("rate_limit, time_limit, pool_grow/shrink, autoscale, add_consumer/cancel_consumer answer as Celery does and take effect", async () => {
    assert.deepEqual(await control(["rate_limit", "ctl.echo", "2/s"]), [{ [TS_HOST]: { ok: "new rate limit set successfully" } }]);
    const started = Date.now();
    const burst = await Promise.all([1, 2, 3].map((i) => producer.send("ctl.echo", [`rl${i}`], {}, { queue: `${PREFIX}.ts` })));
    for (const t of burst) await t.result(5000);
    assert.ok(Date.now() - started >= 900, `three starts at 2/s take ≥ 1 s (took ${Date.now() - started} ms)`);
    assert.deepEqual(await control(["rate_limit", "ctl.echo", "0"]), [{ [TS_HOST]: { ok: "rate limit disabled successfully" } }]);
    assert.deepEqual(await control(["rate_limit", "ctl.unknown", "1/s"]), [{ [TS_HOST]: { error: "unknown task" } }]);

    assert.deepEqual(await control(["time_limit", "ctl.slow", "1", "2"]), [{ [TS_HOST]: { ok: "time limits set successfully" } }]);
    const slow = await producer.send("ctl.slow", [], {}, { queue: `${PREFIX}.ts`, retries: 3 });
    await assert.rejects(slow.result(5000), (e: unknown) => e instanceof TaskFailedError && e.excType === "SoftTimeLimitExceeded");

    assert.deepEqual(await control(["pool_grow", "2"]), [{ [TS_HOST]: { ok: "pool will grow" } }]);
    assert.equal(lastJson(await celery(env, ["inspect", "stats", "-d", TS_HOST, "--timeout", "3", "--json"]))[TS_HOST].pool["max-concurrency"], 3);
    assert.deepEqual(await control(["pool_shrink", "2"]), [{ [TS_HOST]: { ok: "pool will shrink" } }]);
    assert.deepEqual(await control(["autoscale", "2", "1"]), [{ [TS_HOST]: { ok: "autoscale now max=2 min=1" } }]);
    assert.equal(lastJson(await celery(env, ["inspect", "stats", "-d", TS_HOST, "--timeout", "3", "--json"]))[TS_HOST].pool["max-concurrency"], 2);

    assert.deepEqual(await control(["add_consumer", `${PREFIX}.extra`]), [{ [TS_HOST]: { ok: `add consumer ${PREFIX}.extra` } }]);
    const extra = await producer.send("ctl.echo", ["from-extra"], {}, { queue: `${PREFIX}.extra` });
    assert.equal(await extra.result(5000), "from-extra");
    const queues = lastJson(await celery(env, ["inspect", "active_queues", "-d", TS_HOST, "--timeout", "3", "--json"]))[TS_HOST] as { name: string }[];
    assert.deepEqual(queues.map((q) => q.name), [`${PREFIX}.ts`, `${PREFIX}.extra`]);
    assert.deepEqual(await control(["cancel_consumer", `${PREFIX}.extra`]), [{ [TS_HOST]: { ok: `no longer consuming from ${PREFIX}.extra` } }]);
    const conf = lastJson(await celery(env, ["inspect", "conf", "-d", TS_HOST, "--timeout", "3", "--json"]))[TS_HOST];
    assert.equal(conf.result_backend, "rpc://");
    assert.match(conf.broker_url, /^amqp:\/\/shopfds:\*\*@127\.0\.0\.1:\d+\/shopfds$/, "the password masked");
  });
});

describe("task events (Celery's `task` group: off without -E, toggled by enable_events/disable_events)", () => {
  it("sends worker events only, until Celery's enable_events turns task events on; disable_events turns them off; conf says which", async () => {
    // What a monitor bound to celeryev with "#" (as Flower's EventReceiver) receives from this worker.
    const ch = await conn.createChannel();
    const { queue } = await ch.assertQueue("", { exclusive: true, autoDelete: true });
    await ch.bindQueue(queue, "celeryev", "#");
    const seen: { type: string; uuid?: string }[] = [];
    await ch.consume(queue, (m) => m && (m.properties.headers?.hostname === TS_HOST ? seen.push(...[JSON.parse(m.content.toString())].flat()) : undefined), { noAck: true });
    const control = async (command: "enable_events" | "disable_events") => lastJson(await python(env, `import json; from celery_app import app\nprint(json.dumps(app.control.broadcast("${command}", destination=["${TS_HOST}"], reply=True, timeout=3)))`));
    const sendsEvents = async () => lastJson(await celery(env, ["inspect", "conf", "-d", TS_HOST, "--timeout", "3", "--json"]))[TS_HOST].worker_send_task_events as boolean;
    const runEcho = async (text: string) => {
      const task = await producer.send("ctl.echo", [text], {}, { queue: `${PREFIX}.ts` });
      assert.equal(await task.result(5000), text);
      return task.id;
    };
    try {
      assert.equal(await sendsEvents(), false);
      const quiet = await runEcho("no-events");
      await until("a heartbeat (worker events go on)", 5000, async () => seen.some((e) => e.type === "worker-heartbeat"));
      assert.deepEqual(seen.filter((e) => e.uuid === quiet), [], "no task event without -E");

      assert.deepEqual(await control("enable_events"), [{ [TS_HOST]: { ok: "task events enabled" } }]);
      assert.deepEqual(await control("enable_events"), [{ [TS_HOST]: { ok: "task events already enabled" } }]);
      assert.equal(await sendsEvents(), true);
      const loud = await runEcho("events");
      await until("the task's events", 5000, async () => seen.some((e) => e.uuid === loud && e.type === "task-succeeded"));
      assert.deepEqual(seen.filter((e) => e.uuid === loud).map((e) => e.type), ["task-received", "task-started", "task-succeeded"]);

      assert.deepEqual(await control("disable_events"), [{ [TS_HOST]: { ok: "task events disabled" } }]);
      assert.deepEqual(await control("disable_events"), [{ [TS_HOST]: { ok: "task events already disabled" } }]);
      const again = await runEcho("quiet-again");
      const beats = seen.filter((e) => e.type === "worker-heartbeat").length;
      await until("another heartbeat", 5000, async () => seen.filter((e) => e.type === "worker-heartbeat").length > beats);
      assert.deepEqual(seen.filter((e) => e.uuid === again), []);
    } finally {
      await ch.close();
    }
  });
});

describe("scheduling edge cases", () => {
  it("an eta 30 days ahead (past setTimeout's 24.8-day range) waits instead of running at once", async () => {
    const far = await producer.send("ctl.echo", ["far-future"], {}, { queue: `${PREFIX}.ts`, eta: new Date(Date.now() + 30 * 86_400_000) });
    await until("it is scheduled", 3000, async () => JSON.stringify(lastJson(await celery(env, ["inspect", "scheduled", "-d", TS_HOST, "--timeout", "3", "--json"]))).includes(far.id));
    await sleep(1500); // two re-parks at the test's 700 ms horizon
    assert.ok(!ran.includes("far-future"));
    assert.ok(JSON.stringify(lastJson(await celery(env, ["inspect", "scheduled", "-d", TS_HOST, "--timeout", "3", "--json"]))).includes(far.id), "still scheduled after being re-parked");
    worker.revoke([far.id]);
  });

  it("a task re-parked past its horizon runs once, at its eta", async () => {
    const eta = new Date(Date.now() + 2000);
    const task = await producer.send("ctl.echo", ["parked"], {}, { queue: `${PREFIX}.ts`, eta });
    assert.equal(await task.result(6000), "parked");
    assert.ok(Date.now() >= eta.getTime());
    await sleep(300);
    assert.equal(ran.filter((r) => r === "parked").length, 1);
  });

  it("expires is checked again when the eta comes: eta +2 s with expires +1 s is revoked, not run", async () => {
    const task = await producer.send("ctl.echo", ["expired-at-eta"], {}, { queue: `${PREFIX}.ts`, countdown: 1.5, expires: 0.8 });
    await assert.rejects(task.result(6000), (e: unknown) => e instanceof TaskFailedError && e.excType === "TaskRevokedError");
    assert.ok(!ran.includes("expired-at-eta"));
  });
});

describe("consumption survives what used to stop it", () => {
  it("a broadcast whose destination pattern is an invalid regular expression is ignored; tasks still run", async () => {
    const ch = await conn.createChannel();
    ch.publish("celery.pidbox", "", Buffer.from(JSON.stringify({ method: "ping", arguments: {}, pattern: "([", matcher: "pcre", ticket: "t1", reply_to: { exchange: "reply.celery.pidbox", routing_key: "nobody" } })), { contentType: "application/json" });
    await ch.close();
    // The pidbox consumer went on to the next message, and the task consumer is untouched.
    assert.match(await celery(env, ["inspect", "ping", "-d", TS_HOST, "--timeout", "5"]), /pong/);
    const task = await producer.send("ctl.echo", ["after-bad-pattern"], {}, { queue: `${PREFIX}.ts` });
    assert.equal(await task.result(5000), "after-bad-pattern");
    assert.equal(worker.consuming, true);
  });

  it("a channel closed by the broker (add_consumer of a queue declared with other arguments: 406): the worker answers the error, rebuilds its channels and consumes again", async () => {
    const ch = await conn.createChannel();
    await ch.assertQueue(`${PREFIX}.other`, { durable: true, arguments: { "x-max-length": 10 } });
    await ch.close();
    const reply = lastJson(await celery(env, ["control", "add_consumer", `${PREFIX}.other`, "-d", TS_HOST, "--timeout", "5", "--json"]));
    assert.match(JSON.stringify(reply), /PRECONDITION_FAILED|inequivalent arg/);
    await until("the worker consumes again", 10_000, async () => worker.consuming);
    const task = await producer.send("ctl.echo", ["after-channel-loss"], {}, { queue: `${PREFIX}.ts` });
    assert.equal(await task.result(5000), "after-channel-loss");
    assert.ok(!worker.queues.includes(`${PREFIX}.other`), "the refused queue is not kept");
  });

  it("its connection closed by the broker (management API): the worker reconnects, re-declares and consumes again", async () => {
    const o = rabbitOptions(profile("test"));
    const api = outputs.rabbitmq.managementUrl;
    const auth = `Basic ${Buffer.from(`admin:${rabbitPassword(o, "admin")}`).toString("base64")}`;
    // The management API lists a new connection a moment after it opens (the previous test reconnected).
    let mine: { name: string } | undefined;
    await until("the worker's connection listed by the management API", 15_000, async () => {
      const connections = (await (await fetch(`${api}api/connections`, { headers: { authorization: auth } })).json()) as { name: string; connected_at: number; client_properties: { connection_name?: string } }[];
      // The newest one: a connection closed a moment ago may still be listed beside it.
      mine = connections.filter((c) => c.client_properties.connection_name === TS_HOST).sort((a, b) => b.connected_at - a.connected_at)[0];
      return mine !== undefined;
    });
    assert.ok(mine);
    const closed = await fetch(`${api}api/connections/${encodeURIComponent(mine.name)}`, { method: "DELETE", headers: { authorization: auth, "x-reason": "test: forced close" } });
    assert.equal(closed.status, 204);
    await until("the worker notices", 5000, async () => !worker.consuming);
    await until("the worker consumes again", 10_000, async () => worker.consuming);
    const task = await producer.send("ctl.echo", ["after-reconnect"], {}, { queue: `${PREFIX}.ts` });
    assert.equal(await task.result(5000), "after-reconnect");
    const ping = await celery(env, ["inspect", "ping", "-d", TS_HOST, "--timeout", "5"]);
    assert.match(ping, /pong/, "the pidbox is back too");
  });
});
