/**
 * Layer 3: the ShopFDS tasks on the test stack — an order placed through the runtime enqueues its
 * confirmation e-mail, which the local SMTP sink receives within 5 s of pick-up (measured); a second
 * delivery of the same task sends nothing; reports, the FDS batch and the log archive run as tasks.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import nodemailer from "nodemailer";
import { Database } from "../../runtime/db/router";
import { registerShopTasks, TASKS } from "../../runtime/jobs/shopfds-tasks";
import { TaskProducer } from "../../runtime/jobs/producer";
import { Worker } from "../../runtime/jobs/worker";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { OrderInputError, placeOrder } from "../../runtime/shop/orders";
import { mailDir } from "../../scripts/local-stack/smtp";
import { profile, smtpOptions } from "../../scripts/local-stack/stack";
import { createMigratedDatabase, until } from "../support/databases";

const QUEUE = `t${process.pid}.shop`;
let outputs: StackOutputs;
let db: Database;
let worker: Worker;
let producer: TaskProducer;
let dropDb: () => Promise<void> = async () => undefined;
const sender = { send: (...a: Parameters<TaskProducer["send"]>) => producer.forQueue(QUEUE).send(...a), get connected() { return producer.connected; }, sendOrDefer: (...a: Parameters<TaskProducer["sendOrDefer"]>) => producer.forQueue(QUEUE).sendOrDefer(...a) };
const sink = mailDir(smtpOptions(profile("test")));
const mailsTo = (address: string) => (existsSync(sink) ? readdirSync(sink).filter((f) => f.endsWith(".eml") && !f.startsWith(".")) : []).map((f) => ({ file: f, text: readFileSync(path.join(sink, f), "utf8") })).filter((m) => m.text.includes(`X-Sink-Rcpt-To: ${address}`));

before(async () => {
  outputs = await loadStackOutputs();
  assert.ok(outputs.smtp, "the local stack provides an SMTP sink");
  const created = await createMigratedDatabase(outputs, `shopfds_shop_${process.pid}`);
  dropDb = created.drop;
  db = await Database.connect(created.postgres);
  producer = await TaskProducer.connect(outputs.rabbitmq.url);
  // Retries 50 ms apart (1, 2, 4 s by default) so the failed-report case runs quickly.
  worker = new Worker({ url: outputs.rabbitmq.url, queue: QUEUE, hostname: `shop-${process.pid}@test`, retryDelayMs: () => 50 });
  const mailer = nodemailer.createTransport({ host: outputs.smtp.host, port: outputs.smtp.port, secure: outputs.smtp.secure, ignoreTLS: true });
  registerShopTasks(worker, { db, mailer, from: outputs.smtp.from, reportsBaseUrl: "http://127.0.0.1/reports", sender });
  await worker.start();
  await db.query("INSERT INTO users (email, password_hash, name) VALUES ($1, 'x', 'Order Tester')", [`buyer-${process.pid}@test.com`]);
  await db.query("INSERT INTO products (sku, name, category, price, stock) VALUES ('sku-1', 'Keyboard', 'pc', 45000, 10), ('sku-2', 'Mouse', 'pc', 12500.50, 1)");
});

after(async () => {
  await worker?.stop();
  await producer?.close();
  await db?.close();
  await dropDb();
});

describe("ShopFDS tasks", () => {
  it("US3-1, US3-2: placing an order enqueues its confirmation e-mail; the SMTP sink has it within 5 s of pick-up", async () => {
    const email = `buyer-${process.pid}@test.com`;
    const user = (await db.query("SELECT id FROM users WHERE email = $1", [email], { fresh: true })).rows[0].id as string;
    const placed = await placeOrder(db, sender, { userId: Number(user), items: [{ productId: 1, quantity: 2 }, { productId: 2, quantity: 1 }] });
    assert.equal(placed.total, "102500.50");
    await until("the e-mail in the sink", 10_000, async () => mailsTo(email).length === 1);
    const mail = mailsTo(email)[0]!;
    assert.match(mail.text, new RegExp(`Subject: ShopFDS order #${placed.orderId} confirmed`));
    assert.match(mail.text, /Total: 102500\.50 KRW/);
    const logRow = async () => (await db.query("SELECT state, started_at FROM task_log WHERE task_id = $1", [placed.emailTaskId], { fresh: true })).rows[0];
    await until("the task marked done", 5000, async () => (await logRow()).state === "done");
    const log = await logRow();
    const receivedAt = Number(mail.file.split("-")[0]);
    const ms = receivedAt - (log.started_at as Date).getTime();
    console.log(`    e-mail received by the sink ${ms} ms after the worker picked the task up`);
    assert.ok(ms >= 0 && ms < 5000, `${ms} ms (FR-016: within 5 s)`);
  });

  it("a second delivery of the same e-mail task (same id) sends nothing", async () => {
    const email = `buyer-${process.pid}@test.com`;
    const { task_id, args } = (await db.query("SELECT task_id, args FROM task_log WHERE task_name = $1", [TASKS.orderEmail], { fresh: true })).rows[0];
    // The first run's reply (nobody waited for it) is taken first, so the next one is the second run's.
    assert.equal(((await producer.result(task_id, 5000)) as { to: string }).to, email);
    const again = await sender.send(TASKS.orderEmail, args, {}, { id: task_id });
    assert.deepEqual(await again.result(5000), { skipped: "done before" });
    assert.equal(mailsTo(email).length, 1);
  });

  it("refuses a bad order naming the field, and takes no stock", async () => {
    await assert.rejects(placeOrder(db, sender, { userId: 1, items: [{ productId: 2, quantity: 5 }] }), (e: Error) => e instanceof OrderInputError && e.message === "items.0: only 0 of product 2 in stock");
    await assert.rejects(placeOrder(db, sender, { userId: 1, items: [] }), { message: "items: must hold at least one item" });
    await assert.rejects(placeOrder(db, sender, { userId: 999, items: [{ productId: 1, quantity: 1 }] }), { message: "userId: user 999 does not exist" });
    await assert.rejects(placeOrder(db, sender, { userId: 1, items: [{ productId: 1, quantity: 1 }, { productId: 1, quantity: 1 }] }), { message: "items.1.productId: product 1 is listed twice: give it once with its quantity" });
    assert.equal((await db.query("SELECT stock FROM products WHERE id = 1", [], { fresh: true })).rows[0].stock, 8, "the failed orders took nothing");
  });

  it("FR-018, US3-3, US3-5: generates a report and its download link; the FDS batch blocks transactions that hit the blacklist; logs are archived", async () => {
    const { rows } = await db.query("INSERT INTO reports (kind, params) VALUES ('fds_daily', '{\"days\": 7}') RETURNING id");
    await db.query("INSERT INTO fds_transactions (amount, ip_address, email, risk_score, risk_level, decision) VALUES (1000, '203.0.113.50', 'x@test.com', 10, 'low', 'approve'), (2000, '192.0.2.1', 'y@test.com', 10, 'low', 'approve')");
    await db.query("INSERT INTO blacklist_entries (entry_type, value, reason, source, expires_at) VALUES ('ip', '203.0.113.50', 'test', 'test', now() + interval '1 day')");
    await db.query("INSERT INTO app_logs (logged_at, level, service, message) VALUES (now() - interval '100 days', 'info', 'ecommerce', 'old'), (now(), 'info', 'ecommerce', 'new')");

    const report = await (await sender.send(TASKS.report, [rows[0].id])).result(10_000);
    assert.deepEqual(report, { reportId: rows[0].id, rows: 1, url: `http://127.0.0.1/reports/${rows[0].id}/download` });
    const stored = (await db.query("SELECT status, file_path, content FROM reports WHERE id = $1", [rows[0].id], { fresh: true })).rows[0];
    assert.deepEqual([stored.status, stored.file_path, stored.content.split("\n")[0]], ["completed", `fds-report-${rows[0].id}.csv`, "day,decision,transactions,avg_score"]);

    const batch = await (await sender.send(TASKS.fdsBatch, [], { scheduled_slot: new Date(Date.now() + 60_000).toISOString() })).result(10_000);
    assert.deepEqual(batch, { examined: 2, escalated: 1 });
    assert.deepEqual((await db.query("SELECT decision FROM fds_transactions ORDER BY id", [], { fresh: true })).rows.map((r) => r.decision), ["block", "approve"]);

    assert.deepEqual(await (await sender.send(TASKS.archiveLogs, [], { olderThanDays: 90 })).result(10_000), { archived: 1, olderThanDays: 90 });
  });

  it("a report that cannot be generated is 'failed' with its reason after the last retry (FR-021), for whoever polls it", async () => {
    // Params the request API would refuse, written directly: the generation query fails on every try.
    const { rows } = await db.query("INSERT INTO reports (kind, params) VALUES ('fds_daily', '{\"days\": \"seven\"}') RETURNING id");
    await assert.rejects((await sender.send(TASKS.report, [rows[0].id])).result(15_000));
    const report = (await db.query("SELECT status, error, content FROM reports WHERE id = $1", [rows[0].id], { fresh: true })).rows[0];
    assert.deepEqual([report.status, report.content], ["failed", null]);
    assert.match(report.error, /integer|invalid input|NaN/i);
  });
});
