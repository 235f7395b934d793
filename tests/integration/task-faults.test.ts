/**
 * Layer 3: the ShopFDS tasks when what they depend on fails mid-task, with the shipped settings (the
 * worker's retry delays, the SMTP transport's timeouts, the routes):
 * - the primary out of connection slots after an e-mail went out: recording it done fails, the retry
 *   carries "effect done" in its message and only records it — one e-mail, not two; the retry is logged
 *   with its reason; the primary's health check fails while its pool cannot open a connection;
 * - a hung SMTP server (SIGSTOP): e-mails wait on their own queue and worker, a report requested during
 *   the hang completes while the server is still stopped, and every e-mail arrives after it resumes.
 * Every server and worker a test starts is stopped by its PID or handle, also on failure.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { SendMailOptions, Transporter } from "nodemailer";
import pg from "pg";
import { Database } from "../../runtime/db/router";
import { postgresChecks } from "../../runtime/health/checks";
import { TaskProducer } from "../../runtime/jobs/producer";
import { Worker } from "../../runtime/jobs/worker";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { mailTransport } from "../../service/mail";
import { commitOrder, parseOrder } from "../../service/shop/orders";
import { requestReport } from "../../service/shop/reports";
import { registerShopTasks } from "../../service/tasks";
import { superuserClient } from "../../scripts/local-stack/postgres";
import { isAlive } from "../../scripts/local-stack/process";
import { mailDir, startSmtpSink, stopSmtpSink, type LocalSmtpOptions } from "../../scripts/local-stack/smtp";
import { postgresOptions, profile, smtpOptions } from "../../scripts/local-stack/stack";
import { createMigratedDatabase, sleep, until } from "../support/databases";
import { testPorts } from "../support/ports";

const tmp = mkdtempSync(path.join(tmpdir(), "shopfds-task-faults-"));
const hungSmtp: LocalSmtpOptions = { dir: path.join(tmp, "smtp"), port: testPorts("taskFaults") };
const DATABASE = `shopfds_taskfaults_${process.pid}`;
const MAIN_Q = `t${process.pid}.main`;
const EMAIL_Q = `t${process.pid}.email`;
let outputs: StackOutputs;
let db: Database;
let producer: TaskProducer;
let dropDb: () => Promise<void> = async () => undefined;
const workers: Worker[] = [];
const logs: string[] = [];
let sinkPid: number | undefined;

before(async () => {
  outputs = await loadStackOutputs();
  const created = await createMigratedDatabase(outputs, DATABASE);
  dropDb = created.drop;
  db = await Database.connect(created.postgres);
  // The shipped routes, pointed at this file's queues: e-mail on one, the rest on the other.
  producer = await TaskProducer.connect(outputs.rabbitmq.url, { routes: { "shopfds.send_order_confirmation": EMAIL_Q, "shopfds.generate_report": MAIN_Q } });
  await db.query("INSERT INTO users (email, password_hash, name) VALUES ($1, 'x', 'Fault Buyer')", [`faults-${process.pid}@test.com`]);
  await db.query("INSERT INTO products (sku, name, category, price, stock) VALUES ('tf-1', 'Cable', 'pc', 9900, 100000)");
});

after(async () => {
  if (sinkPid && isAlive(sinkPid)) process.kill(sinkPid, "SIGCONT");
  for (const w of workers) await w.stop().catch(() => undefined);
  await stopSmtpSink(hungSmtp).catch(() => undefined);
  await producer?.close();
  await db?.close();
  await dropDb();
  rmSync(tmp, { recursive: true, force: true });
});

async function startWorker(queue: string, mailer: Transporter, name: string): Promise<Worker> {
  const worker = new Worker({ url: outputs.rabbitmq.url, queue, hostname: `${name}-${process.pid}@test`, log: (line) => logs.push(`${name}: ${line}`) });
  workers.push(worker);
  registerShopTasks(worker, { db, mailer, from: "ShopFDS <no-reply@shopfds.local>", reportsBaseUrl: "http://127.0.0.1/reports", sender: producer });
  await worker.start();
  return worker;
}

const userId = async () => Number((await db.query("SELECT id FROM users WHERE email = $1", [`faults-${process.pid}@test.com`], { fresh: true })).rows[0].id);
const order = async () => commitOrder(db, producer, parseOrder({ userId: await userId(), items: [{ productId: 1, quantity: 1 }], shippingAddress: { street: "1 Test Street" } }));
const mailsFor = (dir: string, orderId: number) => (existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith(".") && readFileSync(path.join(dir, f), "utf8").includes(`order #${orderId} confirmed`) && readFileSync(path.join(dir, f), "utf8").includes(`faults-${process.pid}@`)).length : 0);
const taskState = async (id: string) => (await db.query("SELECT state, retries FROM task_log WHERE task_id = $1", [id], { fresh: true })).rows[0] as { state: string; retries: number } | undefined;

describe("tasks under their dependencies' faults", () => {
  it("the primary out of connection slots after the e-mail went out: one e-mail, the retry only records it, logged; /health fails meanwhile", { timeout: 60_000 }, async () => {
    const sink = mailDir(smtpOptions(profile("test")));
    const holders: pg.Client[] = [];
    const su = await superuserClient(postgresOptions(profile("test")), "primary");
    // The test watches on a superuser connection of its own (a reserved slot), spared by the cut.
    const watcher = await superuserClient(postgresOptions(profile("test")), "primary", DATABASE);
    const watcherPid = (await watcher.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number;
    const state = async (id: string) => (await watcher.query("SELECT state, retries FROM task_log WHERE task_id = $1", [id])).rows[0] as { state: string; retries: number } | undefined;
    let exhaustedHealth: { status?: string; output?: string } | undefined;
    let recorded: ReturnType<Database["stats"]>["primaryConnectFailure"];
    const stack = outputs.smtp!;
    const real = mailTransport(stack, 2);
    // The e-mail goes out; then, before the task records it, every connection of this database is cut
    // and every free slot of the primary taken: recording it needs a new connection, which is refused.
    const mailer = {
      sendMail: async (message: SendMailOptions) => {
        const info = await real.sendMail(message);
        const fill = async () => {
          for (;;) {
            const c = new pg.Client({ ...outputs.postgres.primary, database: outputs.postgres.database, user: outputs.postgres.user, password: outputs.postgres.password });
            c.on("error", () => undefined);
            try {
              await c.connect();
              holders.push(c);
            } catch (error) {
              assert.match((error as Error).message, /too many clients|reserved/);
              return;
            }
          }
        };
        // Until no connection of this database is left and no slot is free (a pool may reconnect into a slot the cut freed).
        for (let round = 0; round < 10; round++) {
          await fill();
          const { rows } = await su.query("SELECT count(pg_terminate_backend(pid))::int AS cut FROM pg_stat_activity WHERE datname = $1 AND pid <> $2", [DATABASE, watcherPid]);
          if (rows[0].cut === 0) break;
          await sleep(100);
        }
        // Slots back after 3 s: the first attempt has given up by then (its 2 s of tries), the retry (1 s later) finds them.
        setTimeout(() => {
          void (async () => {
            const [primary] = postgresChecks(db);
            const r = await primary!.run().catch((e: Error) => ({ status: "fail", output: e.message }));
            exhaustedHealth = r as { status?: string; output?: string };
            recorded = db.stats().primaryConnectFailure;
            await Promise.all(holders.splice(0).map((c) => c.end().catch(() => undefined)));
          })();
        }, 3000);
        return info;
      },
    } as unknown as Transporter;
    try {
      await startWorker(EMAIL_Q, mailer, "email-slots");
      const placed = await order();
      await until("the e-mail task recorded done", 30_000, async () => (await state(placed.emailTaskId))?.state === "done");
      await sleep(1500); // a second send, if any, would land now
      assert.equal(mailsFor(sink, placed.orderId), 1, "one e-mail, though its first attempt could not record it");
      assert.equal((await state(placed.emailTaskId))!.retries, 1, "recorded by the retry");
      const retry = logs.find((l) => l.includes(placed.emailTaskId) && l.includes("retry 1"));
      assert.ok(retry, `the retry is logged: ${logs.join("\n")}`);
      assert.match(retry!, /CompletionNotRecordedError: .*its effect went out .*(too many clients|slots are reserved).*\(its effect is done: the retry only records it\)/);
      assert.equal(exhaustedHealth?.status, "fail", `the primary's check failed while its pool could not connect: ${JSON.stringify(exhaustedHealth)}`);
      // Here the pool held no connection, so SELECT 1 itself was refused; with one held it passes and the
      // recorded refusal fails the check (tests/unit/health-checks.test.ts).
      assert.match(exhaustedHealth!.output!, /too many clients|slots are reserved/);
      assert.equal(recorded?.code, "53300", `the router recorded the refused connection: ${JSON.stringify(recorded)}`);
      const after = await postgresChecks(db)[0]!.run();
      assert.notEqual((after as { status?: string }).status, "fail", "it passes again once a new connection succeeds");
    } finally {
      await Promise.all(holders.map((c) => c.end().catch(() => undefined)));
      await su.end();
      await watcher.end();
      real.close();
      for (const w of workers.splice(0)) await w.stop();
    }
  });

  it("a hung SMTP server (SIGSTOP): a report requested meanwhile completes while it is still stopped; every e-mail arrives after it resumes", { timeout: 120_000 }, async () => {
    const smtp = await startSmtpSink(hungSmtp);
    sinkPid = Number(readFileSync(path.join(hungSmtp.dir, "smtp-sink.pid"), "utf8"));
    const mailer = mailTransport(smtp, 4);
    try {
      await startWorker(EMAIL_Q, mailer, "email");
      await startWorker(MAIN_Q, mailer, "main");
      const warm = await order();
      await until("the warm-up e-mail", 10_000, async () => mailsFor(mailDir(hungSmtp), warm.orderId) === 1);
      process.kill(sinkPid, "SIGSTOP");
      const stoppedAt = performance.now();
      const orders: Awaited<ReturnType<typeof order>>[] = [];
      for (let i = 0; i < 8; i++) orders.push(await order()); // more e-mails than the e-mail worker's slots
      await sleep(500);
      const admin = await userId();
      const report = await requestReport(db, producer, { kind: "fds_daily", days: 7 }, admin);
      await until("the report completed while the SMTP server is stopped", 20_000, async () => (await db.query("SELECT status FROM reports WHERE id = $1", [report.id], { fresh: true })).rows[0].status === "completed");
      const reportMs = performance.now() - stoppedAt;
      assert.ok(isAlive(sinkPid) && readFileSync(`/proc/${sinkPid}/stat`, "utf8").split(" ")[2] === "T", "the SMTP server was still stopped when the report completed");
      assert.equal(orders.filter((o) => mailsFor(mailDir(hungSmtp), o.orderId) > 0).length, 0, "no e-mail went out while the server was stopped");
      await sleep(12_000); // past the greeting timeout (10 s): sends on new connections fail and are retried
      process.kill(sinkPid, "SIGCONT");
      await until("every e-mail after the server resumed", 90_000, async () => orders.every((o) => mailsFor(mailDir(hungSmtp), o.orderId) >= 1));
      await sleep(1500);
      const counts = orders.map((o) => mailsFor(mailDir(hungSmtp), o.orderId));
      console.log(`    report completed ${(reportMs / 1000).toFixed(1)} s into the hang; e-mails per order after it: ${counts.join(" ")}; retries logged: ${logs.filter((l) => l.startsWith("email:") && /retry \d+ in/.test(l)).length}`);
      // The one case that may send twice: a send whose final "." reached the server just before it stopped (mail.ts).
      assert.ok(counts.every((n) => n >= 1 && n <= 2), `each e-mail arrived (at most one extra, its reply lost in the hang): ${counts.join(" ")}`);
      for (const o of orders) assert.equal((await taskState(o.emailTaskId))!.state, "done");
    } finally {
      if (isAlive(sinkPid)) process.kill(sinkPid, "SIGCONT");
      mailer.close();
    }
  });
});
