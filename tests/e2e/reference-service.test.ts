/**
 * End to end: the reference service (scripts/service/app.ts) on the test stack — real replica, Redis
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
import type { Cluster } from "ioredis";
import { Database } from "../../runtime/db/router";
import { Blacklist } from "../../runtime/fds/blacklist";
import { FraudDetector } from "../../runtime/fds/evaluate";
import { HealthMonitor } from "../../runtime/health/health";
import { diskCheck, postgresChecks, redisClusterCheck } from "../../runtime/health/checks";
import { TaskProducer } from "../../runtime/jobs/producer";
import { registerShopTasks } from "../../runtime/jobs/shopfds-tasks";
import { Worker } from "../../runtime/jobs/worker";
import { createLogger } from "../../runtime/observability/logger";
import { ServiceMetrics } from "../../runtime/observability/metrics";
import { loadStackOutputs } from "../../runtime/outputs";
import { connectRedisCluster } from "../../runtime/redis/client";
import { mailDir } from "../../scripts/local-stack/smtp";
import { profile, smtpOptions } from "../../scripts/local-stack/stack";
import { createApp } from "../../scripts/service/app";
import { createMigratedDatabase, sleep, until } from "../support/databases";

const QUEUE = `t${process.pid}.e2e`;
let db: Database;
let redis: Cluster;
let producer: TaskProducer;
let worker: Worker;
let health: HealthMonitor;
let server: Server;
let base = "";
let dropDb: () => Promise<void> = async () => undefined;
let userId = 0;
const email = `e2e-${process.pid}@test.com`;

async function call(method: string, route: string, body?: unknown, raw?: string): Promise<{ status: number; json: any; ms: number }> {
  const t = performance.now();
  const res = await fetch(`${base}${route}`, { method, headers: body !== undefined || raw !== undefined ? { "content-type": "application/json" } : {}, body: raw ?? (body !== undefined ? JSON.stringify(body) : undefined) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, ms: performance.now() - t };
}

before(async () => {
  const outputs = await loadStackOutputs();
  const created = await createMigratedDatabase(outputs, `shopfds_e2e_${process.pid}`);
  dropDb = created.drop;
  db = await Database.connect({ ...created.postgres, lagCheckIntervalMs: 200 });
  redis = connectRedisCluster(outputs.redis);
  const blacklist = new Blacklist(redis, db, { cardHashKeys: outputs.fds.cardHashKeys, keyPrefix: `e2e${process.pid}:bl:` });
  const fds = new FraudDetector(blacklist, redis, outputs.fds.cardHashKeys, { velocityKeyPrefix: `e2e${process.pid}:vel:` });
  producer = await TaskProducer.connect(outputs.rabbitmq.url);
  const jobs = { send: (n: string, a?: readonly unknown[], k?: Readonly<Record<string, unknown>>, o: { id?: string } = {}) => producer.send(n, a, k, { ...o, queue: QUEUE }) };
  worker = new Worker({ url: outputs.rabbitmq.url, queue: QUEUE, hostname: `e2e-${process.pid}@test` });
  registerShopTasks(worker, { db, mailer: nodemailer.createTransport({ host: outputs.smtp!.host, port: outputs.smtp!.port, secure: false, ignoreTLS: true }), from: outputs.smtp!.from, reportsDir: "/tmp", reportsBaseUrl: "http://127.0.0.1/reports", sender: jobs });
  await worker.start();
  health = await new HealthMonitor([...postgresChecks(db), redisClusterCheck(redis), diskCheck("/")], { intervalMs: 500 }).start();
  const metrics = new ServiceMetrics({ service: "e2e", db, blacklist, defaultMetrics: false });
  const log = createLogger({ service: "e2e", environment: "dev", destination: new Writable({ write: (_c, _e, done) => done() }) });
  server = createServer(createApp({ db, fds, jobs, health, metrics, log }));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  userId = Number((await db.query("INSERT INTO users (email, password_hash, name) VALUES ($1, 'x', 'E2E Buyer') RETURNING id", [email])).rows[0].id);
  await db.query("INSERT INTO products (sku, name, category, price, stock) VALUES ('e2e-1', 'Keyboard', 'pc', 45000, 1000), ('e2e-2', 'Mouse', 'pc', 12000, 1000)");
  await blacklist.add({ type: "ip", value: "203.0.113.250", reason: "e2e: botnet", source: "test" });
});

after(async () => {
  server?.close();
  health?.stop();
  await worker?.stop();
  await producer?.close();
  redis?.disconnect();
  await db?.close();
  await dropDb();
});

const order = (ip = "192.0.2.10") => ({ userId, items: [{ productId: 1, quantity: 1 }, { productId: 2, quantity: 2 }], ip, email });

describe("reference service: user story scenarios", () => {
  it("US1-1: a new order is readable on the replica within 10 s (replication)", async () => {
    const created = await call("POST", "/orders", order());
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const t0 = performance.now();
    await until("the order served by the replica", 10_000, async () => (await call("GET", `/orders/${created.json.orderId}`)).json.servedBy === "replica");
    console.log(`    order ${created.json.orderId} served by the replica ${(performance.now() - t0).toFixed(0)} ms after it was created`);
  });

  it("US1-2 (read-your-writes): an order read right after it was created is found, whichever server answers", async () => {
    const created = await call("POST", "/orders", order());
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

  it("US3-1: creating an order enqueues the confirmation e-mail; the SMTP sink receives it", async () => {
    const created = await call("POST", "/orders", order());
    const sink = mailDir(smtpOptions(profile("test")));
    await until("the e-mail in the sink", 10_000, async () => existsSync(sink) && readdirSync(sink).some((f) => !f.startsWith(".") && readFileSync(path.join(sink, f), "utf8").includes(`order #${created.json.orderId} confirmed`)));
  });

  it("health answers within 100 ms while the service is busy", async () => {
    const busy = Array.from({ length: 10 }, () => call("POST", "/orders", order()));
    const h = await call("GET", "/health");
    await Promise.all(busy);
    assert.equal(h.json.status, "pass");
    assert.ok(h.ms < 100, `${h.ms} ms`);
  });
});

describe("reference service: malformed input", () => {
  // Built when the test runs (the user exists only after `before`), so each case fails for its own reason.
  const bad = (): [string, string, RegExp, string?][] => [
    ["bad JSON", "{", /^INVALID_JSON$/],
    ["wrong type", JSON.stringify({ ...order(), userId: "one" }), /^INVALID_INPUT$/, "userId"],
    ["missing field", JSON.stringify({ userId, items: [{ productId: 1, quantity: 1 }], ip: "192.0.2.1" }), /^INVALID_INPUT$/, "email"],
    ["no items", JSON.stringify({ ...order(), items: [] }), /^INVALID_INPUT$/, "items"],
    ["unknown field", JSON.stringify({ ...order(), admin: true }), /^INVALID_INPUT$/, "body"],
    ["huge string", JSON.stringify({ ...order(), email: "x".repeat(100_000) }), /^BODY_TOO_LARGE$/],
    ["malformed IP", JSON.stringify({ ...order(), ip: "999.1.1.1" }), /^INVALID_INPUT$/, "ip"],
    ["malformed card", JSON.stringify({ ...order(), card: "4111111111111112" }), /^INVALID_INPUT$/, "card"],
    ["unknown product", JSON.stringify({ ...order(), items: [{ productId: 999, quantity: 1 }] }), /^UNKNOWN_PRODUCT$/, "items.0.productId"],
    ["array body", "[]", /^INVALID_INPUT$/, "body"],
  ];
  it("answers every malformed body with a 4xx naming the problem, never a 500, and writes nothing", async () => {
    const count = async () => (await db.query("SELECT (SELECT count(*) FROM orders)::int + (SELECT count(*) FROM fds_transactions)::int AS n", [], { fresh: true })).rows[0].n;
    const before = await count();
    for (const [what, body, code, field] of bad()) {
      const r = await call("POST", "/orders", undefined, body);
      assert.ok(r.status >= 400 && r.status < 500, `${what}: ${r.status} ${JSON.stringify(r.json)}`);
      assert.match(r.json.error.code, code, `${what}: ${JSON.stringify(r.json)}`);
      assert.ok(r.json.error.message.length > 5, what);
      if (field) assert.equal(r.json.error.field, field, `${what}: ${JSON.stringify(r.json)}`);
    }
    await sleep(100);
    assert.equal(await count(), before);
    assert.equal((await call("GET", "/orders/abc")).status, 404);
  });
});
