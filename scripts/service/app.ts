/**
 * The reference ShopFDS service (issue 8, first part), built only on the runtime library and node:http:
 *
 *   POST /orders          validate, FDS evaluation (blacklisted → 403), order on the primary, e-mail enqueued
 *   GET  /orders/:id      read through the router (a replica); a miss is re-read on the primary, so a
 *                         client sees its own order right after creating it
 *   POST /fds/evaluate    the FDS decision alone
 *   GET  /health, /health/live, /health/ready, /metrics
 *
 * Errors are JSON `{ "error": { "code", "field"?, "message" } }` with a stable code; bad input is a 4xx,
 * never a 500, and writes nothing.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { z } from "zod";
import type { Database } from "../../runtime/db/router";
import { InvalidValueError } from "../../runtime/fds/canonical";
import type { FraudDetector } from "../../runtime/fds/evaluate";
import type { HealthMonitor } from "../../runtime/health/health";
import type { ServiceMetrics } from "../../runtime/observability/metrics";
import { OrderInputError, placeOrder, type TaskSender } from "../../runtime/shop/orders";

export interface AppDeps {
  readonly db: Database;
  readonly fds: FraudDetector;
  readonly jobs: TaskSender;
  readonly health: HealthMonitor;
  readonly metrics: ServiceMetrics;
  readonly log: Logger;
}

const MAX_BODY = 64 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
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
    card: z.string().max(32).optional(),
    shippingAddress: z.record(z.string().max(64), z.string().max(256)).optional(),
  })
  .strict();
const evaluateBody = z.object({ userId: z.number().int().positive().optional(), amount: z.number().nonnegative().max(1e12), ip: z.string().max(64), email: z.string().max(254), card: z.string().max(32).optional() }).strict();

async function readJson(req: IncomingMessage): Promise<unknown> {
  if (!/^application\/json\b/.test(req.headers["content-type"] ?? "")) throw new HttpError(415, "UNSUPPORTED_MEDIA_TYPE", "send a JSON body (content-type: application/json)");
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, "BODY_TOO_LARGE", `the body must be at most ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new HttpError(400, "INVALID_JSON", "the body is not valid JSON");
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.map(String).join(".") || "body";
  throw new HttpError(400, "INVALID_INPUT", `${field}: ${issue.message}`, field);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export function createApp(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { db, fds, log, metrics } = deps;
  const health = deps.health.handler("health");
  const live = deps.health.handler("live");
  const metricsHandler = metrics.handler();

  async function createOrder(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parse(orderBody, await readJson(req));
    const ids = body.items.map((i) => i.productId);
    const { rows } = await db.query<{ id: string; price: string }>("SELECT id, price FROM products WHERE id = ANY($1::bigint[])", [ids], { fresh: true });
    const price = new Map(rows.map((r) => [Number(r.id), Number(r.price)]));
    const missing = body.items.findIndex((i) => !price.has(i.productId));
    if (missing >= 0) throw new HttpError(422, "UNKNOWN_PRODUCT", `items.${missing}.productId: product ${body.items[missing]!.productId} does not exist`, `items.${missing}.productId`);
    const amount = body.items.reduce((n, i) => n + price.get(i.productId)! * i.quantity, 0);
    const evaluation = await fds.evaluate({ userId: body.userId, amount, ip: body.ip, email: body.email, ...(body.card ? { card: body.card } : {}) });
    metrics.observeEvaluation(evaluation);
    const record = (orderId: number | null) =>
      db.query(
        "INSERT INTO fds_transactions (order_id, user_id, amount, ip_address, email, risk_score, risk_level, decision, evaluation_ms) VALUES ($1, $2, $3, $4::inet, $5, $6, $7, $8, $9)",
        [orderId, body.userId, amount, body.ip.trim(), body.email.trim().toLowerCase(), evaluation.score, evaluation.level, evaluation.decision, evaluation.elapsedMs],
      );
    const fdsView = { score: evaluation.score, level: evaluation.level, decision: evaluation.decision, reasons: evaluation.factors.map((f) => f.rule) };
    if (evaluation.decision === "block") {
      await record(null);
      send(res, 403, { error: { code: "FDS_BLOCKED", message: "the transaction was blocked by fraud detection" }, fds: fdsView });
      return;
    }
    const placed = await placeOrder(db, deps.jobs, { userId: body.userId, items: body.items, ...(body.shippingAddress ? { shippingAddress: body.shippingAddress } : {}) });
    await record(placed.orderId);
    send(res, 201, { orderId: placed.orderId, total: placed.total, fds: fdsView, emailTaskId: placed.emailTaskId });
  }

  async function getOrder(id: number, res: ServerResponse): Promise<void> {
    const sql = `SELECT o.id, o.user_id, o.status, o.total_amount, o.created_at, pg_is_in_recovery() AS from_replica,
                   (SELECT json_agg(json_build_object('productId', product_id, 'quantity', quantity, 'unitPrice', unit_price) ORDER BY product_id) FROM order_items WHERE order_id = o.id) AS items
                 FROM orders o WHERE o.id = $1`;
    let { rows } = await db.query(sql, [id]);
    // Not yet on the replica (just created): the primary has it.
    if (rows.length === 0) ({ rows } = await db.query(sql, [id], { fresh: true }));
    const o = rows[0];
    if (!o) throw new HttpError(404, "ORDER_NOT_FOUND", `order ${id} does not exist`, "id");
    send(res, 200, { id: Number(o.id), userId: Number(o.user_id), status: o.status, total: o.total_amount, createdAt: o.created_at, items: o.items ?? [], servedBy: o.from_replica ? "replica" : "primary" });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<string> {
    const url = new URL(req.url ?? "/", "http://service");
    const m = /^\/orders\/(\d{1,18})$/.exec(url.pathname);
    if (req.method === "POST" && url.pathname === "/orders") return (await createOrder(req, res), "/orders");
    if (req.method === "GET" && m) return (await getOrder(Number(m[1]), res), "/orders/:id");
    if (req.method === "POST" && url.pathname === "/fds/evaluate") {
      const body = parse(evaluateBody, await readJson(req));
      const e = await fds.evaluate(body);
      metrics.observeEvaluation(e);
      send(res, 200, { score: e.score, level: e.level, decision: e.decision, factors: e.factors, elapsedMs: e.elapsedMs });
      return "/fds/evaluate";
    }
    if (req.method === "GET" && (url.pathname === "/health" || url.pathname === "/health/ready")) return (health(req, res), url.pathname);
    if (req.method === "GET" && url.pathname === "/health/live") return (live(req, res), url.pathname);
    if (req.method === "GET" && url.pathname === "/metrics") return (metricsHandler(req, res), "/metrics");
    throw new HttpError(404, "NOT_FOUND", `no route ${req.method} ${url.pathname}`);
  }

  return (req, res) => {
    const started = performance.now();
    route(req, res).then(
      (name) => metrics.observeHttp(req.method ?? "GET", name, res.statusCode, (performance.now() - started) / 1000),
      (error: unknown) => {
        let status = 500;
        let body: { code: string; message: string; field?: string };
        if (error instanceof HttpError) {
          status = error.status;
          body = { code: error.code, message: error.message, ...(error.field ? { field: error.field } : {}) };
        } else if (error instanceof InvalidValueError || error instanceof OrderInputError) {
          status = 422;
          body = { code: "INVALID_INPUT", field: error.field, message: error.message };
        } else {
          log.error({ err: error }, "request failed");
          body = { code: "INTERNAL", message: "internal error" };
        }
        if (!res.headersSent) send(res, status, { error: body });
        metrics.observeHttp(req.method ?? "GET", "(error)", status, (performance.now() - started) / 1000);
      },
    );
  };
}
