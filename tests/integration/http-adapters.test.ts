/**
 * Layer 3: the runtime's web-framework adapters in a real Fastify app and a real Express app, against
 * the test stack: health codes and bodies, metrics, one ECS access line per request with the caller's
 * trace id, read-your-writes within a request, the Redis Cluster session store through each framework's
 * session library (expiry and touch), and the error mapping (400/422 naming the field, 503 with
 * Retry-After when Redis does not answer).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { Server } from "node:http";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import fastifyCookie from "@fastify/cookie";
import fastifySession from "@fastify/session";
import express from "express";
import expressSession from "express-session";
import Fastify from "fastify";
import type { Cluster } from "ioredis";
import { z } from "zod";
import { Database } from "../../runtime/db/router";
import { InvalidValueError } from "../../runtime/fds/canonical";
import { postgresChecks, redisClusterCheck } from "../../runtime/health/checks";
import { HealthMonitor } from "../../runtime/health/health";
import { validate } from "../../runtime/http/errors";
import { ExpressSessionStore, shopfdsErrors, shopfdsExpress } from "../../runtime/http/express";
import { fastifySessionStore, shopfdsFastify } from "../../runtime/http/fastify";
import { createLogger, REDACTED_PATHS } from "../../runtime/observability/logger";
import { ServiceMetrics } from "../../runtime/observability/metrics";
import { loadStackOutputs } from "../../runtime/outputs";
import { connectRedisCluster } from "../../runtime/redis/client";
import { SessionStore } from "../../runtime/redis/sessions";
import { createMigratedDatabase, sleep } from "../support/databases";

const SESSION_MS = 1500;
const SECRET = randomBytes(32).toString("hex");
const lines: Record<string, unknown>[] = [];
let db: Database;
let redis: Cluster;
let deadRedis: Cluster;
let health: HealthMonitor;
let dropDb: () => Promise<void> = async () => undefined;
const servers: Server[] = [];

const itemSchema = z.object({ value: z.string({ error: "must be a string" }).max(10, "must be at most 10 characters") }).strict();

before(async () => {
  const outputs = await loadStackOutputs();
  const created = await createMigratedDatabase(outputs, `shopfds_adapters_${process.pid}`, { migrate: false });
  dropDb = created.drop;
  db = await Database.connect({ ...created.postgres, lagCheckIntervalMs: 200 });
  await db.query("CREATE TABLE items (id serial PRIMARY KEY, value text NOT NULL)");
  redis = connectRedisCluster(outputs.redis);
  // Nothing listens there: every command waits, and the session store's bound turns that into an error.
  deadRedis = connectRedisCluster({ nodes: Array.from({ length: 6 }, (_, i) => ({ host: "127.0.0.1", port: 9 + i })), password: "unused" });
  health = await new HealthMonitor([...postgresChecks(db), redisClusterCheck(redis)], { intervalMs: 500 }).start();
});

after(async () => {
  for (const s of servers) s.close();
  health?.stop();
  redis?.disconnect();
  deadRedis?.disconnect();
  await db?.close();
  await dropDb();
});

const listen = async (server: Server): Promise<string> => {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
};

interface Deps {
  readonly log: ReturnType<typeof createLogger>;
  readonly metrics: ServiceMetrics;
  readonly sessions: SessionStore<unknown>;
  readonly deadSessions: SessionStore<unknown>;
}

function deps(framework: string): Deps {
  const log = createLogger({ service: framework, environment: "dev", destination: new Writable({ write: (c, _e, done) => (lines.push({ framework, ...JSON.parse(String(c)) }), done()) }) });
  return {
    log,
    metrics: new ServiceMetrics({ service: framework, db, defaultMetrics: false }),
    sessions: new SessionStore<unknown>(redis, { ttlMs: SESSION_MS, keyPrefix: `adapters${process.pid}:${framework}:` }),
    deadSessions: new SessionStore<unknown>(deadRedis, { timeoutMs: 300 }),
  };
}

/** The keys the logger never writes (REDACTED_PATHS' "password", "*.password"…), each set as a label by /labelled. */
const SECRET_KEYS = [...new Set(REDACTED_PATHS.filter((p) => /^(\*\.)?\w+$/.test(p)).map((p) => p.replace(/^\*\./, "")))];
const labelled = (labels: Record<string, string>) => {
  for (const k of SECRET_KEYS) labels[k] = `secret-${k}`;
  labels.basket = "kept";
  return { ok: true };
};

/** What each app serves, the same routes on both frameworks. */
async function write(value: string): Promise<{ found: number }> {
  const { rows } = await db.query<{ id: number }>("INSERT INTO items (value) VALUES ($1) RETURNING id", [value]);
  // Read back through the router: a replica only if it has replayed this request's write.
  const read = await db.query("SELECT value FROM items WHERE id = $1", [rows[0]!.id]);
  return { found: read.rows.length };
}

async function fastifyApp(monitor: HealthMonitor = health): Promise<string> {
  const d = deps("fastify");
  const app = Fastify({ bodyLimit: 64 * 1024 });
  await app.register(shopfdsFastify, { health: monitor, metrics: d.metrics, log: d.log, db });
  await app.register(fastifyCookie);
  await app.register(fastifySession, { secret: SECRET, store: fastifySessionStore(d.sessions) as never, cookie: { secure: false }, saveUninitialized: false });
  app.post("/items", async (request) => write(validate(itemSchema, request.body).value));
  app.post("/login", async (request) => {
    (request.session as unknown as { set(k: string, v: unknown): void }).set("user", "ada");
    return { ok: true };
  });
  app.get("/me", async (request) => ({ user: (request.session as unknown as { get(k: string): unknown }).get("user") ?? null }));
  app.get("/card", async () => {
    throw new InvalidValueError("card", "must be 12 to 19 digits");
  });
  app.get("/down", async () => d.deadSessions.get("x".repeat(43)));
  app.get("/labelled", async (request) => labelled(request.logLabels));
  await app.ready();
  return listen(app.server);
}

async function expressApp(monitor: HealthMonitor = health): Promise<string> {
  const d = deps("express");
  const app = express();
  app.use(shopfdsExpress({ health: monitor, metrics: d.metrics, log: d.log, db }));
  app.use(express.json({ limit: "64kb" }));
  app.use(expressSession({ store: new ExpressSessionStore(d.sessions), secret: SECRET, resave: false, saveUninitialized: false, cookie: { secure: false } }));
  app.post("/items", async (req, res) => void res.json(await write(validate(itemSchema, req.body).value)));
  app.post("/login", (req, res) => {
    (req.session as unknown as { user: string }).user = "ada";
    res.json({ ok: true });
  });
  app.get("/me", (req, res) => void res.json({ user: (req.session as unknown as { user?: string }).user ?? null }));
  app.get("/card", () => {
    throw new InvalidValueError("card", "must be 12 to 19 digits");
  });
  app.get("/down", async (_req, res) => void res.json(await d.deadSessions.get("x".repeat(43))));
  app.get("/labelled", (_req, res) => void res.json(labelled(res.locals.logLabels as Record<string, string>)));
  app.use(shopfdsErrors({ log: d.log }));
  return listen(app.listen(0, "127.0.0.1"));
}

const call = async (base: string, method: string, path: string, o: { body?: string; cookie?: string; traceparent?: string } = {}) => {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(o.body !== undefined ? { "content-type": "application/json" } : {}), ...(o.cookie ? { cookie: o.cookie } : {}), ...(o.traceparent ? { traceparent: o.traceparent } : {}) },
    body: o.body,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: /json/.test(res.headers.get("content-type") ?? "") && text ? JSON.parse(text) : undefined };
};

for (const [framework, start] of [
  ["fastify", fastifyApp],
  ["express", expressApp],
] as const) {
  describe(`the runtime on ${framework}`, () => {
    let base = "";
    before(async () => {
      base = await start();
    });

    it("serves /health, /health/live and /health/ready as health+json, and /metrics with the requests counted", async () => {
      for (const path of ["/health", "/health/live", "/health/ready"]) {
        const r = await call(base, "GET", path);
        assert.equal(r.status, 200, `${path}: ${r.text}`);
        assert.match(r.headers.get("content-type") ?? "", /application\/health\+json/);
        assert.ok(["pass", "warn"].includes(r.json.status), r.text);
      }
      assert.ok(Object.keys((await call(base, "GET", "/health")).json.checks).some((k) => k.startsWith("postgres")));
      await call(base, "POST", "/items", { body: JSON.stringify({ value: "counted" }) });
      // A dependency failing: /health and /health/ready say 503 with the failing check; /health/live still 200.
      const failing = await new HealthMonitor([{ name: "postgres:connections", componentType: "datastore", run: async () => ({ status: "fail", output: "primary unreachable" }) }]).start();
      try {
        const sick = await start(failing);
        for (const path of ["/health", "/health/ready"]) {
          const r = await call(sick, "GET", path);
          assert.deepEqual([r.status, r.json.status, r.json.checks["postgres:connections"][0].output], [503, "fail", "primary unreachable"], path);
        }
        assert.equal((await call(sick, "GET", "/health/live")).status, 200, "liveness does not follow dependencies");
      } finally {
        failing.stop();
      }
      const metrics = await call(base, "GET", "/metrics");
      assert.match(metrics.text, /shopfds_http_requests_total\{method="POST",route="\/items",status_code="200"[^}]*\} [1-9]/);
    });

    it("writes one ECS access line per request, with the caller's trace id, the route and the status", async () => {
      const traceId = randomBytes(16).toString("hex");
      await call(base, "POST", "/items", { body: JSON.stringify({ value: "traced" }), traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01` });
      await sleep(50);
      const mine = lines.filter((l) => l.framework === framework && (l as { trace?: { id?: string } }).trace?.id === traceId);
      assert.equal(mine.length, 1, JSON.stringify(mine));
      const line = mine[0] as { http: { request: { method: string }; response: { status_code: number } }; labels: { route: string }; event: { duration: number }; "log.level"?: string };
      assert.deepEqual([line.http.request.method, line.http.response.status_code, line.labels.route, line["log.level"]], ["POST", 200, "/items", "info"]);
      assert.ok(line.event.duration > 0);
      assert.equal(lines.filter((l) => l.framework === framework && (l as { labels?: { route?: string } }).labels?.route === "/health").length, 0, "probes are not logged at info");
    });

    it("never writes a secret a handler put among the access line's labels, traced or not (the access line's own redaction)", async () => {
      assert.ok(SECRET_KEYS.length >= 4, SECRET_KEYS.join());
      const traceId = randomBytes(16).toString("hex");
      await call(base, "GET", "/labelled");
      await call(base, "GET", "/labelled", { traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01` });
      await sleep(50);
      const mine = lines.filter((l) => l.framework === framework && (l as { labels?: { route?: string } }).labels?.route === "/labelled") as { labels: Record<string, string>; trace?: { id: string } }[];
      assert.equal(mine.length, 2, JSON.stringify(mine));
      assert.deepEqual(mine.map((l) => l.trace?.id), [undefined, traceId]);
      for (const line of mine) {
        assert.ok(!JSON.stringify(line).includes("secret-"), JSON.stringify(line));
        for (const k of SECRET_KEYS) assert.equal(line.labels[k], "[redacted]", k);
        assert.equal(line.labels.basket, "kept");
      }
    });

    it("reads its own writes within a request: 30 writes, each read back at once through the router", async () => {
      for (let i = 0; i < 30; i++) {
        const r = await call(base, "POST", "/items", { body: JSON.stringify({ value: `ryw${i}` }) });
        assert.deepEqual([r.status, r.json], [200, { found: 1 }]);
      }
    });

    it("maps errors: a schema violation 400 naming the field, bad JSON 400, a runtime input error 422, Redis not answering 503 with Retry-After, no route 404", async () => {
      const bad = await call(base, "POST", "/items", { body: JSON.stringify({ value: 42 }) });
      assert.deepEqual([bad.status, bad.json.error.code, bad.json.error.field], [400, "INVALID_INPUT", "value"]);
      assert.match(bad.json.error.message, /^value: must be a string/);
      const json = await call(base, "POST", "/items", { body: "{not json" });
      assert.deepEqual([json.status, json.json.error.code], [400, "INVALID_JSON"]);
      const card = await call(base, "GET", "/card");
      assert.deepEqual([card.status, card.json.error], [422, { code: "INVALID_INPUT", field: "card", message: card.json.error.message }]);
      const down = await call(base, "GET", "/down");
      assert.deepEqual([down.status, down.json.error.code, down.headers.get("retry-after")], [503, "SERVICE_UNAVAILABLE", "5"]);
      const none = await call(base, "GET", "/nowhere");
      assert.deepEqual([none.status, none.json.error.code], [404, "NOT_FOUND"]);
    });

    it(`keeps sessions in the Redis Cluster through the framework's session library: touched by each request, gone ${SESSION_MS} ms after the last`, async () => {
      const login = await call(base, "POST", "/login");
      const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0]!;
      assert.match(cookie, /=/, "a session cookie");
      // Requests 500 ms apart for three times the lifetime: each one extends it.
      for (let t = 0; t < 3 * SESSION_MS; t += 500) {
        assert.equal((await call(base, "GET", "/me", { cookie })).json.user, "ada", `still logged in after ${t} ms`);
        await sleep(500);
      }
      await sleep(SESSION_MS + 300);
      assert.equal((await call(base, "GET", "/me", { cookie })).json.user, null, "expired after a quiet lifetime");
    });
  });
}
