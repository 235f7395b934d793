/**
 * End to end: the reference service (service/http/app.ts) on the test stack — real replica, Redis
 * Cluster, RabbitMQ, worker and SMTP sink — exercised over HTTP, each test named after the
 * specification's scenario it proves.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import nodemailer from "nodemailer";
import amqp, { type Channel, type ChannelModel } from "amqplib";
import { buildTaskMessage, encodeTaskMessage } from "../../runtime/jobs/protocol";
import type { Cluster } from "ioredis";
import { Database } from "../../runtime/db/router";
import { Blacklist } from "../../runtime/fds/blacklist";
import { registerShopTasks } from "../../service/tasks";
import { Worker } from "../../runtime/jobs/worker";
import { createLogger } from "../../runtime/observability/logger";
import { loadStackOutputs } from "../../runtime/outputs";
import { SessionStore } from "../../runtime/redis/sessions";
import { upsertAccount } from "../../service/shop/accounts";
import { buildServiceDeps, type ServiceDeps } from "../../service/deps";
import { mailDir } from "../../scripts/local-stack/smtp";
import { profile, smtpOptions } from "../../scripts/local-stack/stack";
import { createApp } from "../../service/http/app";
import { createMigratedDatabase, sleep, until } from "../support/databases";

const QUEUE = `t${process.pid}.e2e`;
/** This run's own dead-letter queue (the admin routes act on it) and where a redrive sends its letters. */
const DEAD = `t${process.pid}.e2e-dead`;
const REDRIVEN = `t${process.pid}.e2e-redriven`;
let amqpConn: ChannelModel;
let amqpCh: Channel;
let db: Database;
let redis: Cluster;
let worker: Worker;
let blacklist: Blacklist;
let deps: ServiceDeps;
/** The service's ECS log lines (what Logstash would ship). */
const logLines: string[] = [];
/** Sessions end SESSION_MS after login here (30 minutes in the service). */
const SESSION_MS = 2000;
let server: Server;
let base = "";
let dropDb: () => Promise<void> = async () => undefined;
let userId = 0;
const email = `e2e-${process.pid}@test.com`;
const ADMIN = { email: `admin-${process.pid}@test.com`, password: "correct horse battery staple" };
const CUSTOMER = { email: `customer-${process.pid}@test.com`, password: "another long passphrase" };
const TARGET = { email: `target-${process.pid}@test.com`, password: "the target's real password" };

async function call(method: string, route: string, body?: unknown, raw?: string, token?: string): Promise<{ status: number; json: any; ms: number; text: string; headers: Headers }> {
  const t = performance.now();
  const headers: Record<string, string> = body !== undefined || raw !== undefined ? { "content-type": "application/json" } : {};
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${base}${route}`, { method, headers, body: raw ?? (body !== undefined ? JSON.stringify(body) : undefined) });
  const text = await res.text();
  const json = /json/.test(res.headers.get("content-type") ?? "") && text ? JSON.parse(text) : undefined;
  return { status: res.status, json, ms: performance.now() - t, text, headers: res.headers };
}

async function login(who: { email: string; password: string }): Promise<string> {
  const r = await call("POST", "/login", who);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json.token as string;
}

before(async () => {
  const outputs = await loadStackOutputs();
  const created = await createMigratedDatabase(outputs, `shopfds_e2e_${process.pid}`);
  dropDb = created.drop;
  const log = createLogger({ service: "e2e", environment: "dev", destination: new Writable({ write: (c, _e, done) => (logLines.push(String(c)), done()) }) });
  // The service's own wiring (service/deps.ts), on this run's database, queue and Redis keys; sessions
  // last SESSION_MS; one buyer places every order here, so velocity (tested on its own) is raised.
  deps = await buildServiceDeps(outputs, {
    service: "e2e",
    log,
    postgres: { ...created.postgres, lagCheckIntervalMs: 200 },
    keyPrefix: `e2e${process.pid}:`,
    fds: { velocityLimit: 100_000 },
    sessions: { ttlMs: SESSION_MS },
    jobs: { queue: QUEUE },
    health: { checks: "all", intervalMs: 500 },
    defaultMetrics: false,
    publicUrl: "http://shop.test",
    deadLetterQueue: DEAD,
  });
  amqpConn = await amqp.connect(outputs.rabbitmq.url);
  amqpCh = await amqpConn.createChannel();
  for (const q of [DEAD, REDRIVEN]) await amqpCh.assertQueue(q, { durable: true });
  ({ db, redis, blacklist } = deps);
  worker = new Worker({ url: outputs.rabbitmq.url, queue: QUEUE, hostname: `e2e-${process.pid}@test` });
  registerShopTasks(worker, { db, mailer: nodemailer.createTransport({ host: outputs.smtp!.host, port: outputs.smtp!.port, secure: false, ignoreTLS: true }), from: outputs.smtp!.from, reportsBaseUrl: "http://127.0.0.1/reports", sender: deps.jobs });
  await worker.start();
  server = createServer(await createApp(deps));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  userId = Number((await db.query("INSERT INTO users (email, password_hash, name) VALUES ($1, 'x', 'E2E Buyer') RETURNING id", [email])).rows[0].id);
  await db.query("INSERT INTO products (sku, name, category, price, stock) VALUES ('e2e-1', 'Keyboard', 'pc', 45000, 1000), ('e2e-2', 'Mouse', 'pc', 12000, 1000)");
  await blacklist.add({ type: "ip", value: "203.0.113.250", reason: "e2e: botnet", source: "test" });
  await upsertAccount(db, { ...ADMIN, name: "E2E Admin", role: "admin" });
  await upsertAccount(db, { ...CUSTOMER, name: "E2E Customer", role: "customer" });
  await upsertAccount(db, { ...TARGET, name: "E2E Target", role: "customer" });
});

after(async () => {
  for (const q of [DEAD, REDRIVEN]) await amqpCh?.deleteQueue(q).catch(() => undefined);
  await amqpConn?.close().catch(() => undefined);
  server?.close();
  await worker?.stop();
  await deps?.close();
  await dropDb();
});

const order = (ip = "192.0.2.10") => ({ userId, items: [{ productId: 1, quantity: 1 }, { productId: 2, quantity: 2 }], ip, email });

const counts = async () =>
  (
    await db.query(
      `SELECT (SELECT count(*) FROM orders)::int AS orders, (SELECT count(*) FROM fds_transactions)::int AS fds,
              (SELECT count(*) FROM blacklist_entries)::int AS blacklist, (SELECT count(*) FROM reports)::int AS reports,
              (SELECT count(*) FROM task_log)::int AS tasks, (SELECT sum(stock) FROM products)::int AS stock`,
      [],
      { fresh: true },
    )
  ).rows[0];

describe("reference service: user story scenarios", () => {
  it("US1-1: GET /orders/:id is read from the replica through the read-only pool", async () => {
    const created = await call("POST", "/orders", order());
    await until("replicated", 10_000, async () => (await db.query("SELECT 1 FROM orders WHERE id = $1", [created.json.orderId], { target: "replica" })).rowCount === 1);
    const readsBefore = db.stats().reads.replicas;
    const read = await call("GET", `/orders/${created.json.orderId}`);
    assert.deepEqual([read.status, read.json.servedBy], [200, "replica"]);
    assert.ok(db.stats().reads.replicas > readsBefore, "the router counted a replica read");
  });

  it("US1-2: a new order is readable on the replica within 10 s (replication)", async () => {
    const created = await call("POST", "/orders", order());
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const t0 = performance.now();
    await until("the order served by the replica", 10_000, async () => (await call("GET", `/orders/${created.json.orderId}`)).json.servedBy === "replica");
    console.log(`    order ${created.json.orderId} served by the replica ${(performance.now() - t0).toFixed(0)} ms after it was created`);
  });

  it("US1-3: POST /orders writes on the primary; the client reads its order right after, whichever server answers", async () => {
    const created = await call("POST", "/orders", order());
    const onPrimary = await db.query("SELECT user_id, total_amount, pg_is_in_recovery() AS replica FROM orders WHERE id = $1", [created.json.orderId], { target: "primary" });
    assert.deepEqual([Number(onPrimary.rows[0].user_id), onPrimary.rows[0].total_amount, onPrimary.rows[0].replica], [userId, "69000.00", false]);
    const read = await call("GET", `/orders/${created.json.orderId}`);
    assert.equal(read.status, 200);
    assert.deepEqual([read.json.id, read.json.total, read.json.items.length], [created.json.orderId, "69000.00", 2]);
  });

  it("US2-2: an order from a blacklisted IP is rated high risk and blocked within 100 ms (SC-002)", async () => {
    await call("POST", "/orders", order("203.0.113.250")); // warm-up of the path
    const r = await call("POST", "/orders", order("203.0.113.250"));
    console.log(`    blocked in ${r.ms.toFixed(1)} ms`);
    assert.equal(r.status, 403);
    assert.deepEqual([r.json.error.code, r.json.fds.level, r.json.fds.decision, r.json.fds.reasons], ["FDS_BLOCKED", "high", "block", ["blacklist"]]);
    assert.ok(r.ms < 100, `${r.ms} ms`);
    assert.equal((await db.query("SELECT count(*)::int AS n FROM fds_transactions WHERE decision = 'block' AND order_id IS NULL", [], { fresh: true })).rows[0].n, 2, "the blocked attempts are recorded, with no order");
  });

  it("US2-1, US2-2: an admin blacklists an e-mail and a card over the API; the cluster shards the keys; the next order with either is blocked", async () => {
    const token = await login(ADMIN);
    const addedEmail = await call("POST", "/v1/admin/blacklist", { type: "email", value: ` Fraud-${process.pid}@Example.com `, reason: "chargebacks", ttlSeconds: 3600 }, undefined, token);
    assert.equal(addedEmail.status, 201, JSON.stringify(addedEmail.json));
    assert.deepEqual([addedEmail.json.value, addedEmail.json.source], [`fraud-${process.pid}@example.com`, `admin:${ADMIN.email}`]);
    const addedCard = await call("POST", "/v1/admin/blacklist", { type: "card", value: "4111 1111 1111 1111", reason: "stolen" }, undefined, token);
    assert.equal(addedCard.status, 201);
    assert.match(addedCard.json.value, /^[0-9a-f]{64}$/, "the card is stored as its keyed hash");
    // The two keys live in different hash slots; each slot is owned by one master of the 6-node cluster.
    const slots = await Promise.all([`e2e${process.pid}:bl:email:${addedEmail.json.value}`, `e2e${process.pid}:bl:card:v${addedCard.json.keyVersion}:${addedCard.json.value}`].map((k) => redis.cluster("KEYSLOT", k)));
    assert.notEqual(slots[0], slots[1]);
    const byEmail = await call("POST", "/orders", { ...order(), email: `fraud-${process.pid}@example.com` });
    const byCard = await call("POST", "/orders", { ...order(), card: "4111111111111111" });
    assert.deepEqual([byEmail.status, byEmail.json.fds.reasons, byCard.status, byCard.json.fds.reasons], [403, ["blacklist"], 403, ["blacklist"]]);
  });

  it("US2-3: a blacklist entry leaves the list at its TTL (7 days by default; 2 s here): blocked before, approved after", async () => {
    const token = await login(ADMIN);
    const ip = "198.51.100.77";
    const added = await call("POST", "/v1/admin/blacklist", { type: "ip", value: ip, reason: "scanner", ttlSeconds: 2 }, undefined, token);
    assert.equal(added.status, 201);
    const defaultTtl = await call("POST", "/v1/admin/blacklist", { type: "ip", value: "198.51.100.78", reason: "default ttl" }, undefined, token);
    const days = (Date.parse(defaultTtl.json.expiresAt) - Date.parse(defaultTtl.json.createdAt)) / 86_400_000;
    assert.equal(Math.round(days * 1000) / 1000, 7, "the default TTL is 7 days");
    assert.equal((await call("POST", "/orders", order(ip))).status, 403);
    await sleep(Date.parse(added.json.expiresAt) - Date.now() + 100);
    const after = await call("POST", "/orders", order(ip));
    assert.equal(after.status, 201, JSON.stringify(after.json));
    assert.equal((await call("GET", `/v1/admin/blacklist?type=ip&limit=1000`, undefined, undefined, await login(ADMIN))).json.entries.some((e: { value: string }) => e.value === ip), false, "gone from the listing too");
  });

  it("admin blacklist: pages through a listing, changes a TTL, deletes; customers get 403, anonymous callers 401", async () => {
    const token = await login(ADMIN);
    for (let i = 1; i <= 5; i++) assert.equal((await call("POST", "/v1/admin/blacklist", { type: "ip", value: `192.0.2.${200 + i}`, reason: `page ${i}` }, undefined, token)).status, 201);
    const seen: string[] = [];
    let next: number | undefined;
    do {
      const page = await call("GET", `/v1/admin/blacklist?type=ip&limit=2${next !== undefined ? `&after=${next}` : ""}`, undefined, undefined, token);
      assert.equal(page.status, 200);
      assert.ok(page.json.entries.length <= 2);
      seen.push(...page.json.entries.map((e: { value: string }) => e.value));
      next = page.json.next;
    } while (next !== undefined);
    for (let i = 1; i <= 5; i++) assert.ok(seen.includes(`192.0.2.${200 + i}`), `192.0.2.${200 + i} listed`);
    assert.equal(new Set(seen).size, seen.length, "no entry on two pages");

    const patched = await call("PATCH", "/v1/admin/blacklist/ip/192.0.2.201", { ttlSeconds: 60 }, undefined, token);
    assert.equal(patched.status, 200, JSON.stringify(patched.json));
    assert.ok(Math.abs(Date.parse(patched.json.expiresAt) - Date.now() - 60_000) < 5000);
    assert.equal(Number(await redis.pttl(`e2e${process.pid}:bl:ip:192.0.2.201`)) <= 60_000, true, "Redis carries the new expiry");
    assert.equal((await call("DELETE", "/v1/admin/blacklist/ip/192.0.2.201?reason=cleared%20by%20support", undefined, undefined, token)).status, 204);
    assert.equal((await call("DELETE", "/v1/admin/blacklist/ip/192.0.2.201", undefined, undefined, token)).json.error.code, "ENTRY_NOT_FOUND");
    // The history outlives the entry: who added, changed and removed it, and why.
    const history = await call("GET", "/v1/admin/blacklist/history?type=ip&value=192.0.2.201", undefined, undefined, token);
    assert.deepEqual(
      history.json.events.map((e: { action: string; actor: string; reason: string }) => [e.action, e.actor, e.reason]),
      [["added", `admin:${ADMIN.email}`, "page 1"], ["changed", `admin:${ADMIN.email}`, "page 1"], ["removed", `admin:${ADMIN.email}`, "cleared by support"]],
    );
    assert.equal((await call("GET", "/v1/admin/blacklist/history", undefined, undefined, await login(CUSTOMER))).status, 403);
    assert.equal((await call("PATCH", "/v1/admin/blacklist/ip/192.0.2.201", { ttlSeconds: 60 }, undefined, token)).status, 404);
    assert.equal((await blacklist.check({ ip: "192.0.2.201" })).listed, false);

    const customer = await login(CUSTOMER);
    assert.deepEqual([(await call("GET", "/v1/admin/blacklist?type=ip", undefined, undefined, customer)).status, (await call("GET", "/v1/admin/blacklist?type=ip")).status], [403, 401]);
    assert.equal((await call("POST", "/v1/admin/blacklist", { type: "ip", value: "192.0.2.99", reason: "x" }, undefined, customer)).status, 403);
    assert.equal((await blacklist.check({ ip: "192.0.2.99" })).listed, false, "nothing added by a customer");
  });

  it("admin allow entries and bulk import/export over HTTP: an allowed IP orders though blocked; NDJSON and CSV in, per-line errors, 422 on reject, 415 on another type", async () => {
    const token = await login(ADMIN);
    const ip = "198.51.100.90";
    const send = (route: string, type: string, body: string) => fetch(`${base}${route}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": type }, body }).then(async (r) => ({ status: r.status, json: (await r.json()) as any }));
    const imported = await send("/v1/admin/blacklist/import", "application/x-ndjson", `{"type":"ip","value":"${ip}","reason":"feed"}\n{"kind":"allow","type":"ip","value":"${ip}","reason":"our office"}\n{"type":"ip","value":"198.51.100.300","reason":"typo"}\n`);
    assert.deepEqual([imported.status, imported.json.added, imported.json.errors], [200, 2, [{ line: 3, field: "value", problem: 'must be an IPv4 or IPv6 address (got "198.51.100.300")' }]]);
    const allowed = await call("POST", "/orders", order(ip));
    assert.equal(allowed.status, 201, JSON.stringify(allowed.json));
    assert.equal((await call("DELETE", `/v1/admin/blacklist/ip/${ip}?kind=allow&reason=moved`, undefined, undefined, token)).status, 204);
    assert.equal((await call("POST", "/orders", order(ip))).status, 403);
    const history = await call("GET", `/v1/admin/blacklist/history?type=ip&value=${ip}&kind=allow`, undefined, undefined, token);
    assert.deepEqual(history.json.events.map((e: { kind: string; action: string; actor: string }) => [e.kind, e.action, e.actor]), [["allow", "added", `admin:${ADMIN.email}`], ["allow", "removed", `admin:${ADMIN.email}`]]);

    const rejected = await send("/v1/admin/blacklist/import?onInvalid=reject", "text/csv", "type,value,reason\nip,198.51.100.91,ok\nip,nope,bad\n");
    assert.deepEqual([rejected.status, rejected.json.error.code, rejected.json.applied, rejected.json.errors.map((e: { line: number }) => e.line)], [422, "IMPORT_REJECTED", false, [3]]);
    assert.equal((await blacklist.check({ ip: "198.51.100.91" })).listed, false, "nothing applied");
    assert.equal((await send("/v1/admin/blacklist/import", "text/plain", "x")).status, 415);
    const exported = await fetch(`${base}/v1/admin/blacklist/export?format=csv&type=ip&kind=block`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(exported.headers.get("content-type"), "text/csv; charset=utf-8");
    const csv = await exported.text();
    assert.match(csv, new RegExp(`^kind,type,value,hash,keyVersion,reason,source,ttlSeconds,expiresAt\\n(.*\\n)*block,ip,${ip.replace(/\./g, "\\.")},,,feed,admin:`));
    const reimported = await send("/v1/admin/blacklist/import", "text/csv", csv);
    assert.deepEqual([reimported.status, reimported.json.added, reimported.json.updated, reimported.json.errors], [200, 0, 0, []]);
    const customer = await login(CUSTOMER);
    assert.equal((await fetch(`${base}/v1/admin/blacklist/export`, { headers: { authorization: `Bearer ${customer}` } })).status, 403);
    await call("DELETE", `/v1/admin/blacklist/ip/${ip}`, undefined, undefined, token);
  });

  it("US2-5: a session ends at its TTL after login (30 min in the service; 2 s here); logout ends it at once", async () => {
    assert.equal(new SessionStore(redis).ttlMs, 30 * 60 * 1000, "the default is 30 minutes");
    const r = await call("POST", "/login", ADMIN);
    assert.ok(Math.abs(Date.parse(r.json.expiresAt) - Date.now() - SESSION_MS) < 500);
    assert.equal((await call("GET", "/v1/admin/blacklist?type=ip", undefined, undefined, r.json.token)).status, 200);
    await sleep(SESSION_MS + 200);
    const expired = await call("GET", "/v1/admin/blacklist?type=ip", undefined, undefined, r.json.token);
    assert.deepEqual([expired.status, expired.json.error.code], [401, "UNAUTHENTICATED"]);

    const token = await login(ADMIN);
    assert.equal((await call("POST", "/logout", undefined, undefined, token)).status, 204);
    assert.equal((await call("GET", "/v1/admin/blacklist?type=ip", undefined, undefined, token)).status, 401);
    assert.equal((await call("POST", "/logout", undefined, undefined, token)).status, 401);
  });

  it("login: a wrong password and an unknown e-mail get the same 401, and take about as long", async () => {
    const wrong = await call("POST", "/login", { ...ADMIN, password: "not the password at all" });
    const unknown = await call("POST", "/login", { email: `nobody-${process.pid}@test.com`, password: "whatever it is" });
    assert.deepEqual([wrong.status, wrong.json, unknown.status, unknown.json], [401, unknown.json, 401, wrong.json]);
    assert.equal(wrong.json.error.code, "INVALID_CREDENTIALS");
    assert.ok(Math.min(wrong.ms, unknown.ms) * 4 > Math.max(wrong.ms, unknown.ms), `both run scrypt: ${wrong.ms.toFixed(1)} vs ${unknown.ms.toFixed(1)} ms`);
    assert.equal((await db.query("SELECT password_hash FROM users WHERE email = $1", [ADMIN.email], { fresh: true })).rows[0].password_hash.startsWith("scrypt$"), true);
  });

  it("login: after 5 wrong passwords for one account from one IP, even the right one is refused 429 with Retry-After; others are not", async () => {
    for (let i = 1; i <= 5; i++) assert.equal((await call("POST", "/login", { ...TARGET, password: `guess number ${i}` })).status, 401, `guess ${i}`);
    const locked = await call("POST", "/login", TARGET);
    assert.deepEqual([locked.status, locked.json.error.code], [429, "TOO_MANY_ATTEMPTS"]);
    const retryAfter = Number(locked.headers.get("retry-after"));
    assert.ok(retryAfter > 800 && retryAfter <= 900, `Retry-After ${retryAfter} s (15 minutes)`);
    assert.equal((await call("POST", "/login", CUSTOMER)).status, 200, "another account from the same IP still logs in");
    assert.equal((await db.query("SELECT count(*)::int AS n FROM users WHERE email = $1 AND last_login_at IS NOT NULL", [TARGET.email], { fresh: true })).rows[0].n, 0, "the locked account was never logged into");
  });

  it("US3-1, US3-2: creating an order enqueues the confirmation e-mail without waiting for it; the SMTP sink has it within 5 s", async () => {
    const created = await call("POST", "/orders", order());
    const task = await db.query("SELECT task_name, state FROM task_log WHERE task_id = $1", [created.json.emailTaskId], { fresh: true });
    assert.equal(task.rows[0].task_name, "shopfds.send_order_confirmation");
    const sink = mailDir(smtpOptions(profile("test")));
    const t0 = performance.now();
    await until("the e-mail in the sink", 5_000, async () => existsSync(sink) && readdirSync(sink).some((f) => !f.startsWith(".") && readFileSync(path.join(sink, f), "utf8").includes(`order #${created.json.orderId} confirmed`)));
    console.log(`    e-mail in the sink ${(performance.now() - t0).toFixed(0)} ms after the order was answered`);
  });

  it("FR-018: POST /reports is answered 202 at once; the worker generates the report; GET /reports/:id gives the download link", async () => {
    const token = await login(ADMIN);
    const requested = await call("POST", "/reports", { kind: "fds_daily", days: 7 }, undefined, token);
    assert.equal(requested.status, 202, JSON.stringify(requested.json));
    assert.deepEqual([requested.json.status, requested.json.statusUrl], ["queued", `http://shop.test/reports/${requested.json.id}`]);
    let report: any;
    await until("the report completed", 10_000, async () => (report = (await call("GET", `/reports/${requested.json.id}`, undefined, undefined, token)).json).status === "completed");
    assert.equal(report.downloadUrl, `http://shop.test/reports/${requested.json.id}/download`);
    const csv = await call("GET", `/reports/${requested.json.id}/download`, undefined, undefined, token);
    assert.deepEqual([csv.status, csv.headers.get("content-type")], [200, "text/csv; charset=utf-8"]);
    const lines = csv.text.trim().split("\n");
    assert.equal(lines[0], "day,decision,transactions,avg_score");
    const blocked = (await db.query("SELECT count(*)::int AS n FROM fds_transactions WHERE decision = 'block'", [], { fresh: true })).rows[0].n;
    assert.equal(lines.filter((l) => l.includes(",block,")).reduce((n, l) => n + Number(l.split(",")[2]), 0), blocked, "the report counts what the table holds");
    assert.equal((await call("GET", "/reports/00000000-0000-0000-0000-000000000000", undefined, undefined, token)).status, 404);
    assert.equal((await call("GET", `/reports/${requested.json.id}`)).status, 401);
  });

  it("logs one ECS line per request with what the Kibana dashboards read, the caller's trace id, and never a password", async () => {
    logLines.length = 0;
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const res = await fetch(`${base}/orders`, { method: "POST", headers: { "content-type": "application/json", traceparent: `00-${traceId}-00f067aa0ba902b7-01` }, body: JSON.stringify(order("203.0.113.250")) });
    assert.equal(res.status, 403);
    await call("POST", "/login", { ...ADMIN, password: "a wrong password for the log test" });
    await call("GET", "/health");
    const lines = logLines.flatMap((l) => l.trim().split("\n")).map((l) => JSON.parse(l));
    const blocked = lines.find((l) => l.trace?.id === traceId);
    assert.ok(blocked, lines.map((l) => l.message).join(" | "));
    assert.deepEqual(
      [blocked["http.request.method"] ?? blocked.http?.request?.method, blocked.http.response.status_code, blocked.url.path, blocked.labels.route, blocked.labels.fds_decision, blocked["service.name"] ?? blocked.service?.name, blocked["log.level"]],
      ["POST", 403, "/orders", "/orders", "block", "e2e", "info"],
    );
    assert.ok(blocked.event.duration > 0 && Number.isInteger(blocked.event.duration), "event.duration in nanoseconds");
    assert.ok(lines.some((l) => l.labels?.route === "/login" && l.http.response.status_code === 401));
    assert.equal(lines.some((l) => l.labels?.route === "/health"), false, "probes are not logged at info");
    assert.equal(logLines.join("").includes("a wrong password"), false, "no password in any line");
  });

  it("sends the security headers on every answer, errors and health included (the edge adds none of its own)", async () => {
    for (const r of [await call("GET", "/health/live"), await call("GET", "/orders/999999999"), await call("POST", "/orders", undefined, "{not json")]) {
      assert.equal(r.headers.get("strict-transport-security"), "max-age=31536000; includeSubDomains", `${r.status}`);
      assert.equal(r.headers.get("x-content-type-options"), "nosniff");
      assert.equal(r.headers.get("x-frame-options"), "DENY");
      assert.equal(r.headers.get("content-security-policy"), "default-src 'none';frame-ancestors 'none'");
      assert.equal(r.headers.get("referrer-policy"), "no-referrer");
      assert.equal(r.headers.get("cross-origin-resource-policy"), "same-origin");
      assert.equal(r.headers.get("x-powered-by"), null);
    }
  });

  it("US4-5: /health answers within 100 ms while the service is busy, checking the database, Redis and the disk", async () => {
    const busy = Array.from({ length: 10 }, () => call("POST", "/orders", order()));
    const h = await call("GET", "/health");
    await Promise.all(busy);
    assert.equal(h.json.status, "pass");
    assert.ok(h.ms < 100, `${h.ms} ms`);
    const checks = Object.keys(h.json.checks).join(" ");
    for (const name of ["postgres", "redis", "disk"]) assert.match(checks, new RegExp(name), `${name} is checked: ${checks}`);
  });
});

// The fuzzer: every public endpoint with a valid body, and for each field every wrong type, a missing
// value, a long string, plus bad JSON, a wrong content type and unknown fields. Each must be a 4xx with a
// code and a message (naming the field where there is one), never a 500, and write nothing.
describe("reference service: dead letters (admin)", () => {
  /** A dead letter as the worker leaves one: the task's message with its reason and home queue. */
  const bury = (id: string, to: string) => {
    const { body, options } = encodeTaskMessage(buildTaskMessage("shop.send_order_email", [41], { to }, { id, retries: 3 }));
    const headers = { ...(options.headers as object), "x-shopfds-reason": "failed after 4 attempts: Error: relay said 550", "x-shopfds-queue": REDRIVEN, "x-shopfds-dead-at": new Date().toISOString() };
    amqpCh.sendToQueue(DEAD, body, { ...options, headers });
  };

  it("lists them redacted, redrives one with the admin and reason recorded, purges only with the count confirmed; customers 403", async () => {
    const token = await login(ADMIN);
    bury(`dl-${process.pid}-1`, "buyer@example.com");
    await until("the dead letter is there", 5000, async () => (await amqpCh.checkQueue(DEAD)).messageCount === 1);
    assert.equal((await call("GET", "/v1/admin/dead-letters", undefined, undefined, await login(CUSTOMER))).status, 403);
    const listed = await call("GET", "/v1/admin/dead-letters", undefined, undefined, token);
    assert.equal(listed.status, 200);
    assert.equal(listed.json.count, 1);
    const [d] = listed.json.deadLetters;
    assert.deepEqual([d.id, d.task, d.retries, d.queue, d.kwargs], [`dl-${process.pid}-1`, "shop.send_order_email", 3, REDRIVEN, { to: "[redacted]" }]);
    assert.match(d.reason, /relay said 550/);

    const both = await call("POST", "/v1/admin/dead-letters/redrive", { ids: [d.id], all: true, reason: "x" }, undefined, token);
    assert.deepEqual([both.status, both.json.error.field], [400, "ids"]);
    const noReason = await call("POST", "/v1/admin/dead-letters/redrive", { ids: [d.id], reason: "  " }, undefined, token);
    assert.deepEqual([noReason.status, noReason.json.error.field], [400, "reason"]);
    const redriven = await call("POST", "/v1/admin/dead-letters/redrive", { ids: [d.id], reason: "relay fixed" }, undefined, token);
    assert.deepEqual(redriven.json, { redriven: [{ id: d.id, task: "shop.send_order_email", queue: REDRIVEN }] });
    const back = await amqpCh.get(REDRIVEN, { noAck: true });
    assert.ok(back, "the task is back in its queue");
    assert.deepEqual([back.properties.headers?.id, back.properties.headers?.retries, back.properties.headers?.["x-shopfds-redrive-reason"]], [d.id, 0, `admin:${ADMIN.email}: relay fixed`]);
    assert.equal((await amqpCh.checkQueue(DEAD)).messageCount, 0);

    bury(`dl-${process.pid}-2`, "x@example.com");
    bury(`dl-${process.pid}-3`, "y@example.com");
    await until("two dead letters", 5000, async () => (await amqpCh.checkQueue(DEAD)).messageCount === 2);
    const mismatch = await call("DELETE", "/v1/admin/dead-letters?confirm=5", undefined, undefined, token);
    assert.deepEqual([mismatch.status, mismatch.json.error.code, mismatch.json.error.message], [409, "CONFIRMATION_MISMATCH", "confirm: must be the current count of dead letters, 2 (got 5)"]);
    assert.equal((await amqpCh.checkQueue(DEAD)).messageCount, 2, "nothing purged");
    assert.deepEqual((await call("DELETE", "/v1/admin/dead-letters?confirm=2", undefined, undefined, token)).json, { purged: 2 });
    assert.equal((await amqpCh.checkQueue(DEAD)).messageCount, 0);
  });
});

describe("reference service: malformed input (fuzzing)", () => {
  const WRONG: unknown[] = [null, true, 0, -1, 1.5, 1e300, "", "x".repeat(5000), "\u0000", [], [1], {}, { a: 1 }];
  // `alsoValid`: values of WRONG that are in fact acceptable for that field (skipped).
  const endpoints = (): { method: string; route: string; valid: Record<string, unknown>; optional: string[]; alsoValid?: Record<string, unknown[]> }[] => [
    { method: "POST", route: "/orders", valid: { ...order(), card: "4242424242424242", shippingAddress: { city: "Seoul" } }, optional: ["card", "shippingAddress"], alsoValid: { shippingAddress: [{}] } },
    { method: "POST", route: "/fds/evaluate", valid: { userId, amount: 100, ip: "192.0.2.1", email: "a@test.com", card: "4242424242424242" }, optional: ["userId", "card"], alsoValid: { amount: [0, 1.5] } },
    { method: "POST", route: "/login", valid: { email: "nobody@test.com", password: "x" }, optional: [] },
    { method: "POST", route: "/v1/admin/blacklist", valid: { type: "ip", value: "192.0.2.123", reason: "fuzz", ttlSeconds: 60 }, optional: ["ttlSeconds"] },
    { method: "PATCH", route: "/v1/admin/blacklist/ip/203.0.113.250", valid: { ttlSeconds: 600 }, optional: [] },
    { method: "POST", route: "/reports", valid: { kind: "fds_daily", days: 7 }, optional: ["days"] },
  ];

  it("answers every malformed body with a 4xx naming the problem, never a 500, and writes nothing", async () => {
    // Sessions last SESSION_MS (2 s) here, less than the whole fuzz run under load: a fresh one per endpoint.
    let token = "";
    const before = await counts();
    let cases = 0;
    const expect4xx = async (what: string, method: string, route: string, raw: string, field?: string, contentType = "application/json") => {
      const res = await fetch(`${base}${route}`, { method, headers: { "content-type": contentType, authorization: `Bearer ${token}` }, ...(method === "GET" ? {} : { body: raw }) });
      const json: any = await res.json().catch(() => undefined);
      cases++;
      assert.ok(res.status >= 400 && res.status < 500, `${what}: ${res.status} ${JSON.stringify(json)}`);
      assert.match(json?.error?.code ?? "", /^[A-Z_]+$/, `${what}: ${JSON.stringify(json)}`);
      assert.ok(json.error.message.length > 5, what);
      if (field) assert.ok(json.error.field === field || json.error.field?.startsWith(`${field}.`), `${what}: field ${JSON.stringify(json.error.field)}, expected ${field}`);
    };
    for (const e of endpoints()) {
      const name = `${e.method} ${e.route}`;
      token = await login(ADMIN);
      await expect4xx(`${name} bad JSON`, e.method, e.route, "{");
      await expect4xx(`${name} truncated JSON`, e.method, e.route, JSON.stringify(e.valid).slice(0, -1));
      await expect4xx(`${name} no body`, e.method, e.route, "");
      await expect4xx(`${name} array body`, e.method, e.route, "[]", "body");
      await expect4xx(`${name} string body`, e.method, e.route, '"x"', "body");
      await expect4xx(`${name} form body`, e.method, e.route, "a=1", undefined, "application/x-www-form-urlencoded");
      await expect4xx(`${name} 100 KB`, e.method, e.route, JSON.stringify({ ...e.valid, pad: "x".repeat(100_000) }));
      await expect4xx(`${name} unknown field`, e.method, e.route, JSON.stringify({ ...e.valid, isAdmin: true }), "body");
      for (const field of Object.keys(e.valid)) {
        token = await login(ADMIN);
        if (!e.optional.includes(field)) {
          const { [field]: _, ...rest } = e.valid;
          await expect4xx(`${name} without ${field}`, e.method, e.route, JSON.stringify(rest), field);
        }
        for (const wrong of WRONG) {
          if (JSON.stringify(wrong) === JSON.stringify(e.valid[field]) || e.alsoValid?.[field]?.some((v) => JSON.stringify(v) === JSON.stringify(wrong))) continue;
          if (e.route === "/login" && field === "password" && typeof wrong === "string" && wrong.length > 0 && !wrong.includes("\u0000")) continue; // any string is a password (a wrong one: 401)
          await expect4xx(`${name} ${field}=${JSON.stringify(wrong).slice(0, 20)}`, e.method, e.route, JSON.stringify({ ...e.valid, [field]: wrong }), field);
        }
      }
    }
    await expect4xx("GET /orders/abc", "GET", "/orders/abc", "");
    await expect4xx("GET /orders/0", "GET", "/orders/0", "");
    await expect4xx("DELETE unknown type", "DELETE", "/v1/admin/blacklist/phone/123", "", "type");
    await expect4xx("DELETE bad encoding", "DELETE", "/v1/admin/blacklist/ip/%E0%A4%A", "", "value");
    await expect4xx("list without type", "GET", "/v1/admin/blacklist", "", "type");
    await expect4xx("list with limit=0", "GET", "/v1/admin/blacklist?type=ip&limit=0", "", "limit");
    await expect4xx("list with limit=abc", "GET", "/v1/admin/blacklist?type=ip&limit=abc", "", "limit");
    await expect4xx("list with a stray parameter", "GET", "/v1/admin/blacklist?type=ip&drop=1", "", "query");
    await expect4xx("a product listed twice", "POST", "/orders", JSON.stringify({ ...order(), items: [{ productId: 1, quantity: 1 }, { productId: 1, quantity: 2 }] }), "items.1.productId");
    await expect4xx("NUL in a key", "POST", "/orders", JSON.stringify({ ...order(), shippingAddress: { "ci\u0000ty": "Seoul" } }), "shippingAddress");
    await expect4xx("nested 30 000 deep", "POST", "/orders", "[".repeat(30_000) + "]".repeat(30_000));
    await expect4xx("nested 40 deep in a field", "POST", "/orders", JSON.stringify({ ...order(), shippingAddress: JSON.parse("[".repeat(40) + "]".repeat(40)) }), "shippingAddress");
    await expect4xx("NUL in a nested string", "POST", "/orders", JSON.stringify({ ...order(), shippingAddress: { city: "Se\u0000oul" } }), "shippingAddress.city");
    await expect4xx("report id malformed", "GET", "/reports/not-a-uuid", "");
    console.log(`    ${cases} malformed requests, all answered 4xx`);
    await sleep(200); // anything enqueued by mistake would have run by now
    assert.deepEqual(await counts(), before, "nothing was written");
  });
});
