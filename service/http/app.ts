/**
 * The reference ShopFDS service, built only on the runtime library and node:http:
 *
 *   POST /orders          validate, FDS evaluation (blacklisted → 403), order on the primary, e-mail enqueued
 *   GET  /orders/:id      read through the router (a replica); a miss is re-read on the primary, so a
 *                         client sees its own order right after creating it
 *   POST /fds/evaluate    the FDS decision alone
 *   POST /login, /logout  sessions on the Redis Cluster (30 min after login); `Authorization: Bearer <token>`;
 *                         repeated wrong passwords are refused for a while (429, Retry-After)
 *   /v1/admin/blacklist   GET ?type=&limit=&after= (pages), POST (add), PATCH …/:type/:value {ttlSeconds},
 *                         DELETE …/:type/:value — an admin session required
 *   POST /reports         (admin) records the report and enqueues its generation → 202 with its status URL
 *   GET  /reports/:id     status and, once completed, the download link; GET /reports/:id/download the CSV
 *   GET  /health, /health/live, /health/ready, /metrics
 *
 * Errors are JSON `{ "error": { "code", "field"?, "message" } }` with a stable code; bad input is a 4xx,
 * never a 500, and writes nothing.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { z } from "zod";
import { isConnectionError, type Database } from "@shopfds/runtime/db/router";
import { Blacklist, BlacklistEntryNotFoundError, BlacklistInputError, type BlacklistEntry } from "@shopfds/runtime/fds/blacklist";
import { BLACKLIST_TYPES, InvalidValueError } from "@shopfds/runtime/fds/canonical";
import type { Evaluation, FraudDetector, Transaction } from "@shopfds/runtime/fds/evaluate";
import type { HealthMonitor } from "@shopfds/runtime/health/health";
import type { ServiceMetrics } from "@shopfds/runtime/observability/metrics";
import { withTraceContext } from "@shopfds/runtime/observability/logger";
import { captureError } from "@shopfds/runtime/observability/sentry";
import type { SessionStore } from "@shopfds/runtime/redis/sessions";
import { authenticate, type Account } from "../shop/accounts";
import type { LoginGuard } from "../shop/login-guard";
import { FDS_RECORD_SQL, noRepeatedProduct, ORDER_READ_SQL, OrderInputError, placeOrder, PRICES_SQL, type OrderTaskSender } from "../shop/orders";
import { getReport, reportContent, requestReport, type Report } from "../shop/reports";

export interface AppDeps {
  readonly db: Database;
  readonly fds: FraudDetector;
  readonly jobs: OrderTaskSender;
  readonly blacklist: Blacklist;
  readonly sessions: SessionStore<Account>;
  /** Brute-force protection of POST /login. */
  readonly loginGuard: LoginGuard;
  readonly health: HealthMonitor;
  readonly metrics: ServiceMetrics;
  readonly log: Logger;
  /** Where clients reach this service (links in answers: report status and download). @default "" (relative links) */
  readonly publicUrl?: string;
}

const MAX_BODY = 64 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const orderBody = z
  .object({
    userId: z.number({ error: "must be a user id (a number)" }).int().positive(),
    items: z.array(z.object({ productId: z.number().int().positive(), quantity: z.number().int().min(1).max(1000) }).strict()).min(1, "must hold at least one item").max(100),
    ip: z.string({ error: "must be the client's IP address" }).max(64),
    email: z.string({ error: "must be an e-mail address" }).max(254),
    card: z.string({ error: "must be a card number (a string of digits)" }).min(12, "must be a card number").max(32, "must be at most 32 characters").optional(),
    shippingAddress: z.record(z.string().max(64), z.string().max(256)).optional(),
  })
  .strict()
  .superRefine(noRepeatedProduct);
const loginBody = z.object({ email: z.string({ error: "must be an e-mail address" }).max(254), password: z.string({ error: "must be a string" }).min(1, "must not be empty").max(1024) }).strict();
const ttlBody = z.object({ ttlSeconds: z.unknown() }).strict();
const listQuery = z
  .object({
    type: z.enum(BLACKLIST_TYPES, { error: (i) => `must be one of ${BLACKLIST_TYPES.join(", ")} (got ${JSON.stringify(i.input ?? null)})` }),
    limit: z.string().regex(/^\d{1,4}$/, "must be a number from 1 to 1000").transform(Number).optional(),
    after: z.string().regex(/^\d{1,18}$/, "must be a cursor returned as next").transform(Number).optional(),
  })
  .strict();
const evaluateBody = z.object({ userId: z.number().int().positive().optional(), amount: z.number().nonnegative().max(1e12), ip: z.string().max(64), email: z.string().max(254), card: z.string().min(12, "must be a card number").max(32).optional() }).strict();

async function readJson(req: IncomingMessage): Promise<unknown> {
  if (!/^application\/json\b/.test(req.headers["content-type"] ?? "")) throw new HttpError(415, "UNSUPPORTED_MEDIA_TYPE", "send a JSON body (content-type: application/json)");
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, "BODY_TOO_LARGE", `the body must be at most ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new HttpError(400, "INVALID_JSON", "the body is not valid JSON");
  }
  const nul = pathOfNul(value);
  if (nul !== undefined) throw new HttpError(400, "INVALID_INPUT", `${nul || "body"}: must not contain NUL characters (\\u0000)`, nul || "body");
  return value;
}

const MAX_DEPTH = 32;

/**
 * Where a string (or key) holding U+0000 is, as a field path, PostgreSQL's text and jsonb cannot store
 * it; undefined if nowhere. Bodies nested deeper than MAX_DEPTH are refused too (no schema here nests
 * that deep, and a deep one must not cost a stack overflow).
 */
function pathOfNul(root: unknown): string | undefined {
  const stack: [unknown, string, number][] = [[root, "", 0]];
  while (stack.length > 0) {
    const [value, at, depth] = stack.pop()!;
    if (typeof value === "string") {
      if (value.includes("\u0000")) return at;
      continue;
    }
    if (typeof value !== "object" || value === null) continue;
    if (depth >= MAX_DEPTH) throw new HttpError(400, "INVALID_INPUT", `${at || "body"}: nested more than ${MAX_DEPTH} levels deep`, at || "body");
    for (const [k, v] of Object.entries(value)) {
      if (k.includes("\u0000")) return at || "body";
      stack.push([v, at ? `${at}.${k}` : k, depth + 1]);
    }
  }
  return undefined;
}

function parse<T>(schema: z.ZodType<T>, value: unknown, root = "body"): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.map(String).join(".") || root;
  throw new HttpError(400, "INVALID_INPUT", `${field}: ${issue.message}`, field);
}

/** A dependency that cannot answer now (PostgreSQL unreachable, Redis Cluster down or timing out): 503, not 500. */
function isUnavailable(error: unknown): boolean {
  if (isConnectionError(error) || (error as Error)?.name === "BrokerUnavailableError") return true;
  const e = error as { name?: string; message?: string; previousErrors?: unknown[] };
  // A MULTI aborted because a command in it met a down cluster (EXECABORT) carries those errors.
  if (e?.previousErrors?.some(isUnavailable)) return true;
  return /CLUSTERDOWN|TRYAGAIN|timed out|Connection is closed|ClusterAllFailedError|MaxRetriesPerRequest|Failed to refresh slots cache/.test(`${e?.name ?? ""} ${e?.message ?? ""}`);
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export function createApp(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { db, fds, log, metrics } = deps;
  const publicUrl = (deps.publicUrl ?? "").replace(/\/+$/, "");
  const health = deps.health.handler("health");
  const live = deps.health.handler("live");
  const metricsHandler = metrics.handler();
  /** The FDS decision a request led to, for its access log line (Kibana's FDS block rate). */
  const decisions = new WeakMap<IncomingMessage, string>();

  /** The FDS decision, counted in the metrics and kept for the request's access log line. */
  async function evaluate(req: IncomingMessage, transaction: Transaction): Promise<Evaluation> {
    const evaluation = await fds.evaluate(transaction);
    metrics.observeEvaluation(evaluation);
    decisions.set(req, evaluation.decision);
    return evaluation;
  }

  async function createOrder(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parse(orderBody, await readJson(req));
    const ids = body.items.map((i) => i.productId);
    const { rows } = await db.query<{ id: string; price: string }>(PRICES_SQL, [ids], { fresh: true });
    const price = new Map(rows.map((r) => [Number(r.id), Number(r.price)]));
    const missing = body.items.findIndex((i) => !price.has(i.productId));
    if (missing >= 0) throw new HttpError(422, "UNKNOWN_PRODUCT", `items.${missing}.productId: product ${body.items[missing]!.productId} does not exist`, `items.${missing}.productId`);
    const amount = body.items.reduce((n, i) => n + price.get(i.productId)! * i.quantity, 0);
    const evaluation = await evaluate(req, { userId: body.userId, amount, ip: body.ip, email: body.email, ...(body.card ? { card: body.card } : {}) });
    const recordBlocked = () =>
      db.query(
        FDS_RECORD_SQL,
        [null, body.userId, amount, body.ip.trim(), body.email.trim().toLowerCase(), evaluation.score, evaluation.level, evaluation.decision, evaluation.elapsedMs],
      );
    const fdsView = { score: evaluation.score, level: evaluation.level, decision: evaluation.decision, reasons: evaluation.factors.map((f) => f.rule) };
    if (evaluation.decision === "block") {
      await recordBlocked();
      send(res, 403, { error: { code: "FDS_BLOCKED", message: "the transaction was blocked by fraud detection" }, fds: fdsView });
      return;
    }
    // The FDS record is written with the order, in its transaction: no order without its decision on record.
    const fdsRecord = { amount, ip: body.ip.trim(), email: body.email.trim().toLowerCase(), score: evaluation.score, level: evaluation.level, decision: evaluation.decision, elapsedMs: evaluation.elapsedMs };
    const placed = await placeOrder(db, deps.jobs, { userId: body.userId, items: body.items, ...(body.shippingAddress ? { shippingAddress: body.shippingAddress } : {}) }, fdsRecord);
    send(res, 201, { orderId: placed.orderId, total: placed.total, fds: fdsView, emailTaskId: placed.emailTaskId });
  }

  async function getOrder(id: number, res: ServerResponse): Promise<void> {
    const sql = ORDER_READ_SQL;
    let { rows } = await db.query(sql, [id]);
    // Not yet on the replica (just created): the primary has it.
    if (rows.length === 0) ({ rows } = await db.query(sql, [id], { fresh: true }));
    const o = rows[0];
    if (!o) throw new HttpError(404, "ORDER_NOT_FOUND", `order ${id} does not exist`, "id");
    send(res, 200, { id: Number(o.id), userId: Number(o.user_id), status: o.status, total: o.total_amount, createdAt: o.created_at, items: o.items ?? [], servedBy: o.from_replica ? "replica" : "primary" });
  }

  /** The session's account; 401 without a live session, 403 when `role` is required and not held. */
  async function account(req: IncomingMessage, role?: Account["role"]): Promise<Account & { sessionId: string }> {
    const m = /^Bearer ([A-Za-z0-9_-]{1,128})$/.exec(req.headers.authorization ?? "");
    const session = m ? await deps.sessions.get(m[1]!) : undefined;
    if (!session) throw new HttpError(401, "UNAUTHENTICATED", "log in first (POST /login) and send the token as Authorization: Bearer <token>; sessions end 30 minutes after login", "authorization");
    if (role && session.role !== role) throw new HttpError(403, "FORBIDDEN", `this needs the ${role} role`);
    return { ...session, sessionId: m![1]! };
  }

  async function login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parse(loginBody, await readJson(req));
    // The peer's address: behind a proxy, that proxy's (forwarding headers can be forged by anyone).
    const ip = req.socket.remoteAddress ?? "unknown";
    const wait = await deps.loginGuard.retryAfterSeconds(body.email, ip);
    if (wait !== undefined) throw new HttpError(429, "TOO_MANY_ATTEMPTS", `too many wrong passwords: try again in ${wait} s`, undefined, { "retry-after": String(wait) });
    const found = await authenticate(db, body.email, body.password);
    if (!found) {
      await deps.loginGuard.failed(body.email, ip);
      throw new HttpError(401, "INVALID_CREDENTIALS", "the e-mail or the password is wrong");
    }
    await deps.loginGuard.succeeded(body.email, ip);
    const session = await deps.sessions.create(found);
    log.info({ user: { id: String(found.userId) }, event: { action: "login" } }, "login");
    send(res, 200, { token: session.id, expiresAt: session.expiresAt, user: { id: found.userId, email: found.email, role: found.role } });
  }

  const entryView = (e: BlacklistEntry & { id?: number }) => ({ ...(e.id !== undefined ? { id: e.id } : {}), type: e.type, value: e.value, ...(e.keyVersion !== undefined ? { keyVersion: e.keyVersion } : {}), reason: e.reason, source: e.source, createdAt: e.createdAt, expiresAt: e.expiresAt });

  async function adminBlacklist(req: IncomingMessage, res: ServerResponse, url: URL, rest: string): Promise<void> {
    const admin = await account(req, "admin");
    if (rest === "" && req.method === "GET") {
      const q = parse(listQuery, Object.fromEntries(url.searchParams), "query");
      const page = await deps.blacklist.list(q.type, { ...(q.limit !== undefined ? { limit: q.limit } : {}), ...(q.after !== undefined ? { after: q.after } : {}) });
      send(res, 200, { entries: page.entries.map(entryView), ...(page.next !== undefined ? { next: page.next } : {}) });
      return;
    }
    if (rest === "" && req.method === "POST") {
      const body = await readJson(req);
      if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, "INVALID_INPUT", "body: must be a JSON object", "body");
      const entry = await deps.blacklist.add({ ...(body as object), source: `admin:${admin.email}` } as never);
      log.info({ user: { id: String(admin.userId) }, event: { action: "blacklist-add" }, blacklist: { type: entry.type } }, "blacklist entry added");
      send(res, 201, entryView(entry));
      return;
    }
    const m = /^\/([a-z]+)\/([^/]+)$/.exec(rest);
    if (!m) throw new HttpError(404, "NOT_FOUND", `no route ${req.method} ${url.pathname}`);
    const { type } = parse(listQuery.pick({ type: true }), { type: m[1] });
    let value: string;
    try {
      value = decodeURIComponent(m[2]!);
    } catch {
      throw new HttpError(400, "INVALID_INPUT", "value: is not a valid URL-encoded value", "value");
    }
    if (req.method === "DELETE") {
      if (!(await deps.blacklist.remove(type, value))) throw new HttpError(404, "ENTRY_NOT_FOUND", `value: no ${type} entry for it`, "value");
      log.info({ user: { id: String(admin.userId) }, event: { action: "blacklist-remove" }, blacklist: { type } }, "blacklist entry removed");
      res.writeHead(204).end();
      return;
    }
    if (req.method === "PATCH") {
      const body = parse(ttlBody, await readJson(req));
      const entry = await deps.blacklist.changeTtl(type, value, body.ttlSeconds as number);
      send(res, 200, entryView(entry));
      return;
    }
    throw new HttpError(405, "METHOD_NOT_ALLOWED", `${req.method} is not allowed on ${url.pathname} (GET, POST on the collection; PATCH, DELETE on an entry)`);
  }

  const reportView = (r: Report) => ({
    id: r.id,
    kind: r.kind,
    params: r.params,
    status: r.status,
    createdAt: r.createdAt,
    completedAt: r.completedAt,
    statusUrl: `${publicUrl}/reports/${r.id}`,
    ...(r.status === "completed" ? { downloadUrl: `${publicUrl}/reports/${r.id}/download` } : {}),
    ...(r.status === "failed" ? { error: r.error } : {}),
  });

  async function reports(req: IncomingMessage, res: ServerResponse, rest: string): Promise<string> {
    const admin = await account(req, "admin");
    if (rest === "" && req.method === "POST") {
      const report = await requestReport(db, deps.jobs, (await readJson(req)) as never, admin.userId);
      send(res, 202, reportView(report));
      return "/reports";
    }
    const m = /^\/([0-9a-f-]{36})(\/download)?$/.exec(rest);
    if (m && req.method === "GET") {
      if (m[2]) {
        const csv = await reportContent(db, m[1]!);
        if (csv === undefined) throw new HttpError(404, "REPORT_NOT_READY", `report ${m[1]} does not exist or is not completed yet`, "id");
        res.writeHead(200, { "content-type": "text/csv; charset=utf-8", "content-disposition": `attachment; filename="fds-report-${m[1]}.csv"`, "content-length": Buffer.byteLength(csv) });
        res.end(csv);
        return "/reports/:id/download";
      }
      const report = await getReport(db, m[1]!);
      if (!report) throw new HttpError(404, "REPORT_NOT_FOUND", `report ${m[1]} does not exist`, "id");
      send(res, 200, reportView(report));
      return "/reports/:id";
    }
    throw new HttpError(404, "NOT_FOUND", `no route ${req.method} /reports${rest}`);
  }

  /** The route a request matched (its metrics and log label, also when it fails). */
  const routeNames = new WeakMap<IncomingMessage, string>();

  async function route(req: IncomingMessage, res: ServerResponse): Promise<string> {
    const url = new URL(req.url ?? "/", "http://service");
    const path = url.pathname;
    const on = async (name: string, run: () => unknown): Promise<string> => {
      routeNames.set(req, name);
      await run();
      return name;
    };
    if (req.method === "POST" && path === "/orders") return on("/orders", () => createOrder(req, res));
    if (req.method === "GET" && /^\/orders\/\d{1,18}$/.test(path)) return on("/orders/:id", () => getOrder(Number(path.slice("/orders/".length)), res));
    if (req.method === "POST" && path === "/fds/evaluate") {
      return on("/fds/evaluate", async () => {
        const body = parse(evaluateBody, await readJson(req));
        const e = await evaluate(req, body);
        send(res, 200, { score: e.score, level: e.level, decision: e.decision, factors: e.factors, elapsedMs: e.elapsedMs });
      });
    }
    if (req.method === "POST" && path === "/login") return on("/login", () => login(req, res));
    if (req.method === "POST" && path === "/logout") {
      return on("/logout", async () => {
        const { sessionId } = await account(req);
        await deps.sessions.destroy(sessionId);
        res.writeHead(204).end();
      });
    }
    if (path === "/v1/admin/blacklist" || path.startsWith("/v1/admin/blacklist/")) return on("/v1/admin/blacklist", () => adminBlacklist(req, res, url, path.slice("/v1/admin/blacklist".length)));
    if (path === "/reports" || path.startsWith("/reports/")) {
      routeNames.set(req, "/reports");
      return reports(req, res, path.slice("/reports".length));
    }
    if (req.method === "GET" && (path === "/health" || path === "/health/ready")) return on(path, () => health(req, res));
    if (req.method === "GET" && path === "/health/live") return on(path, () => live(req, res));
    if (req.method === "GET" && path === "/metrics") return on("/metrics", () => metricsHandler(req, res));
    throw new HttpError(404, "NOT_FOUND", `no route ${req.method} ${path}`);
  }

  /**
   * One ECS access line per request, the fields the Kibana dashboards read: method, status, route,
   * duration (ECS event.duration is in nanoseconds), the FDS decision; and the caller's trace context.
   * Probes and scrapes (/health*, /metrics) only at debug level. Never the query string or the body.
   */
  function accessLog(req: IncomingMessage, status: number, name: string, started: number, reqLog: Logger): void {
    const seconds = (performance.now() - started) / 1000;
    metrics.observeHttp(req.method ?? "GET", name, status, seconds);
    const quiet = name.startsWith("/health") || name === "/metrics";
    if (quiet && !reqLog.isLevelEnabled("debug")) return;
    const decision = decisions.get(req);
    const line = {
      http: { request: { method: req.method }, response: { status_code: status } },
      url: { path: (req.url ?? "/").split("?")[0] },
      event: { duration: Math.round(seconds * 1e9) },
      labels: { route: name, ...(decision ? { fds_decision: decision } : {}) },
    };
    if (quiet) reqLog.debug(line, `${req.method} ${name} ${status}`);
    else reqLog.info(line, `${req.method} ${name} ${status}`);
  }

  return (req, res) => {
    const started = performance.now();
    const reqLog = withTraceContext(log, req.headers.traceparent as string | undefined);
    route(req, res).then(
      (name) => accessLog(req, res.statusCode, name, started, reqLog),
      (error: unknown) => {
        let status = 500;
        let body: { code: string; message: string; field?: string };
        let headers: Record<string, string> = {};
        if (error instanceof HttpError) {
          headers = error.headers;
          status = error.status;
          body = { code: error.code, message: error.message, ...(error.field ? { field: error.field } : {}) };
        } else if (error instanceof InvalidValueError || error instanceof OrderInputError) {
          status = 422;
          body = { code: "INVALID_INPUT", field: error.field, message: error.message };
        } else if (error instanceof BlacklistInputError) {
          status = error instanceof BlacklistEntryNotFoundError ? 404 : 422;
          const first = error.problems[0] ?? "";
          const field = first.slice(0, Math.max(0, first.indexOf(":")));
          body = { code: status === 404 ? "ENTRY_NOT_FOUND" : "INVALID_INPUT", field: !field || field === "(input)" ? "body" : field, message: error.problems.join("; ") };
        } else {
          reqLog.error({ err: error, http: { request: { method: req.method } }, url: { path: req.url?.split("?")[0] } }, "request failed");
          captureError(error, { tags: { route: req.url?.split("?")[0] ?? "" } });
          if (isUnavailable(error)) {
            status = 503;
            headers = { "retry-after": "5" };
            body = { code: "SERVICE_UNAVAILABLE", message: "a service this request needs is unavailable; try again shortly" };
          } else {
            body = { code: "INTERNAL", message: "internal error" };
          }
        }
        if (!res.headersSent) send(res, status, { error: body }, headers);
        accessLog(req, status, routeNames.get(req) ?? "(no route)", started, reqLog);
      },
    );
  };
}
