/**
 * Layer 3: the scheduler's guarantees on the test stack (a database and a queue of this file's own):
 * two scheduler processes firing an every-second schedule fire each slot exactly once; with an injected
 * clock, a restart fires nothing twice and a missed slot is fired once (the latest only).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import amqp, { type Channel, type ChannelModel } from "amqplib";
import pg from "pg";
import { Scheduler } from "../../runtime/jobs/scheduler";
import { shopSchedule, TASKS } from "../../service/tasks";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { isAlive, stopPid } from "../../scripts/local-stack/process";
import { createMigratedDatabase, sleep, until } from "../support/databases";

const ROOT = path.resolve(__dirname, "../..");
const QUEUE = `t${process.pid}.sched`;
let outputs: StackOutputs;
let db: pg.Pool;
let databaseUrl = "";
let dropDb: () => Promise<void> = async () => undefined;
let conn: ChannelModel;
let ch: Channel;
const children: ChildProcess[] = [];

before(async () => {
  outputs = await loadStackOutputs();
  const created = await createMigratedDatabase(outputs, `shopfds_sched_${process.pid}`);
  dropDb = created.drop;
  const p = created.postgres;
  databaseUrl = `postgres://${p.user}:${encodeURIComponent(p.password)}@${p.primary.host}:${p.primary.port}/${p.database}`;
  db = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  conn = await amqp.connect(outputs.rabbitmq.url);
  ch = await conn.createChannel();
  await ch.assertQueue(QUEUE, { durable: true });
});

after(async () => {
  for (const c of children) if (c.pid && isAlive(c.pid)) await stopPid(c.pid, "SIGKILL");
  await ch?.deleteQueue(QUEUE).catch(() => undefined);
  await conn?.close().catch(() => undefined);
  await db?.end();
  await dropDb();
});

describe("scheduler", () => {
  it("two scheduler processes fire each slot of an every-second schedule exactly once", async () => {
    let out = "";
    for (const name of ["sched-a", "sched-b"]) {
      const child = spawn(process.execPath, ["--import", "tsx", "tests/support/scheduler-process.ts", outputs.rabbitmq.url, QUEUE, name], {
        cwd: ROOT,
        env: { ...process.env, SCHED_DATABASE_URL: databaseUrl },
        stdio: ["ignore", "pipe", "inherit"],
      });
      child.stdout!.on("data", (d) => (out += d));
      children.push(child);
    }
    await until("both schedulers ready", 20_000, async () => out.includes("ready sched-a") && out.includes("ready sched-b"));
    await sleep(4500);
    for (const c of children) await stopPid(c.pid!, "SIGTERM");

    const slots: string[] = [];
    for (let m = await ch.get(QUEUE, { noAck: true }); m; m = await ch.get(QUEUE, { noAck: true })) {
      slots.push((JSON.parse(m.content.toString())[1] as { scheduled_slot: string }).scheduled_slot);
    }
    const ledger = (await db.query("SELECT slot, fired_by FROM scheduler_runs WHERE schedule = 'every-second' ORDER BY slot")).rows;
    console.log(`    ${slots.length} slots fired in 4.5 s by two schedulers (${ledger.filter((r) => r.fired_by === "sched-a").length} by a, ${ledger.filter((r) => r.fired_by === "sched-b").length} by b)`);
    assert.ok(slots.length >= 4, `at least 4 slots fired (got ${slots.length})`);
    assert.equal(new Set(slots).size, slots.length, "no slot fired twice");
    assert.deepEqual([...slots].sort(), ledger.map((r) => (r.slot as Date).toISOString()), "every fired slot is in the ledger, and only those");
    const seconds = ledger.map((r) => (r.slot as Date).getTime() / 1000);
    assert.deepEqual(seconds, seconds.map((_, i) => seconds[0]! + i), "consecutive seconds, none skipped");
  });

  it("with an injected clock: a restart fires nothing twice, and only the latest missed slot is caught up", async () => {
    let now = new Date("2026-11-23T14:59:59Z"); // 23:59:59 in Seoul
    const sent: string[] = [];
    const make = () =>
      new Scheduler({
        entries: [{ name: "fds-midnight", cron: "0 0 * * *", timezone: "Asia/Seoul", task: "shopfds.fds_batch_reevaluate" }],
        sender: { send: async (_n, _a, kwargs) => (sent.push(String(kwargs?.scheduled_slot)), { id: crypto.randomUUID() }) },
        db,
        hostname: "clock-test",
        clock: () => now,
        tickMs: 3_600_000,
      });
    const first = make();
    await first.start();
    assert.equal(sent.length, 0, "nothing due before midnight");
    now = new Date("2026-11-23T15:00:01Z");
    await first.tick();
    assert.deepEqual(sent, ["2026-11-23T15:00:00.000Z"], "fires at midnight Seoul time");
    await first.stop();

    const restarted = make();
    await restarted.start();
    await restarted.tick();
    assert.equal(sent.length, 1, "a restart does not fire the same slot again");
    await restarted.stop();

    now = new Date("2026-11-26T15:30:00Z"); // three midnights later, nothing ran meanwhile
    const late = new Scheduler({
      entries: [{ name: "fds-midnight", cron: "0 0 * * *", timezone: "Asia/Seoul", task: "shopfds.fds_batch_reevaluate" }],
      sender: { send: async (_n, _a, kwargs) => (sent.push(String(kwargs?.scheduled_slot)), { id: crypto.randomUUID() }) },
      db,
      hostname: "clock-test",
      clock: () => now,
      tickMs: 3_600_000,
      catchUpMs: 7 * 24 * 3_600_000,
    });
    await late.start();
    await late.stop();
    assert.deepEqual(sent.slice(1), ["2026-11-26T15:00:00.000Z"], "only the latest missed slot is fired");
  });

  it("US3-3, US3-5: the ShopFDS schedule fires the FDS batch at 00:00 Seoul time every day, the log archive on Sundays at 02:00 only", async () => {
    let now = new Date("2026-11-28T14:59:59Z"); // Saturday 23:59:59 in Seoul
    const sent: { task: string; slot: string; kwargs: Record<string, unknown> }[] = [];
    const scheduler = new Scheduler({
      entries: shopSchedule("Asia/Seoul"),
      sender: { send: async (task, _a, kwargs = {}) => (sent.push({ task, slot: String(kwargs.scheduled_slot), kwargs }), { id: crypto.randomUUID() }) },
      db,
      hostname: "shop-schedule-test",
      clock: () => now,
      tickMs: 3_600_000,
    });
    await scheduler.start();
    const at = async (iso: string) => {
      now = new Date(iso);
      sent.length = 0;
      await scheduler.tick();
      return sent.filter((s) => s.task !== TASKS.staleTasks && s.task !== TASKS.blacklistExpiry && s.task !== TASKS.resultsPurge).map((s) => `${s.task} ${s.slot}`);
    };
    try {
      assert.deepEqual(await at("2026-11-28T15:00:01Z"), [`${TASKS.fdsBatch} 2026-11-28T15:00:00.000Z`], "Sunday 00:00 Seoul: the FDS batch");
      const sunday2am = await at("2026-11-28T17:00:01Z");
      assert.deepEqual(sunday2am, [`${TASKS.archiveLogs} 2026-11-28T17:00:00.000Z`], "Sunday 02:00 Seoul: the archive");
      assert.deepEqual(await at("2026-11-29T15:00:01Z"), [`${TASKS.fdsBatch} 2026-11-29T15:00:00.000Z`], "Monday 00:00: the batch again");
      assert.deepEqual(await at("2026-11-29T17:00:01Z"), [], "Monday 02:00: no archive");
      assert.equal(shopSchedule("Asia/Seoul").find((e) => e.task === TASKS.archiveLogs)?.kwargs?.olderThanDays, 90, "archives what is older than 90 days");
      now = new Date("2026-11-29T18:17:01Z");
      sent.length = 0;
      await scheduler.tick();
      assert.deepEqual(sent.filter((s) => s.task === TASKS.blacklistExpiry).map((s) => s.slot), ["2026-11-29T18:17:00.000Z"], "the blacklist's expired rows swept every hour at :17");
      now = new Date("2026-11-29T18:47:01Z");
      sent.length = 0;
      await scheduler.tick();
      assert.deepEqual(sent.filter((s) => s.task === TASKS.resultsPurge).map((s) => s.slot), ["2026-11-29T18:47:00.000Z"], "chord results older than a day purged every hour at :47");
    } finally {
      await scheduler.stop();
    }
  });

  it("refuses an invalid cron expression, naming the schedule", () => {
    assert.throws(() => new Scheduler({ entries: [{ name: "broken", cron: "61 * * * *", task: "x" }], sender: { send: async () => ({ id: "x" }) }, db, hostname: "h" }), /^Error: schedule broken: cron "61 \* \* \* \*" is invalid/);
  });
});
