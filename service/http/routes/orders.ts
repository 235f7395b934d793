/** POST /orders, GET /orders/:id and POST /fds/evaluate: the order path, through the FDS decision. */
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import type { Evaluation, Transaction } from "@shopfds/runtime/fds";
import { HttpError } from "@shopfds/runtime/http";
import { FDS_RECORD_SQL, noRepeatedProduct, ORDER_READ_SQL, placeOrder, PRICES_SQL, STATEMENT } from "../../shop/orders";
import type { App, AppDeps } from "../deps";

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
const evaluateBody = z.object({ userId: z.number().int().positive().optional(), amount: z.number().nonnegative().max(1e12), ip: z.string().max(64), email: z.string().max(254), card: z.string().min(12, "must be a card number").max(32).optional() }).strict();

export function orderRoutes(deps: AppDeps) {
  const { db, fds, metrics } = deps;

  /** The FDS decision, counted in the metrics and put on the request's access line (Kibana's FDS block rate). */
  async function evaluate(request: FastifyRequest, transaction: Transaction): Promise<Evaluation> {
    const evaluation = await fds.evaluate(transaction);
    metrics.observeEvaluation(evaluation);
    request.logLabels.fds_decision = evaluation.decision;
    return evaluation;
  }

  return async (app: App) => {
    app.post("/orders", { schema: { body: orderBody } }, async (request, reply) => {
      const body = request.body;
      const ids = body.items.map((i) => i.productId);
      const { rows } = await db.query<{ id: string; price: string }>(PRICES_SQL, [ids], { fresh: true, prepare: STATEMENT.prices });
      const price = new Map(rows.map((r) => [Number(r.id), Number(r.price)]));
      const missing = body.items.findIndex((i) => !price.has(i.productId));
      if (missing >= 0) throw new HttpError(422, "UNKNOWN_PRODUCT", `items.${missing}.productId: product ${body.items[missing]!.productId} does not exist`, `items.${missing}.productId`);
      const amount = body.items.reduce((n, i) => n + price.get(i.productId)! * i.quantity, 0);
      const evaluation = await evaluate(request, { userId: body.userId, amount, ip: body.ip, email: body.email, ...(body.card ? { card: body.card } : {}) });
      const fdsView = { score: evaluation.score, level: evaluation.level, decision: evaluation.decision, reasons: evaluation.factors.map((f) => f.rule) };
      const fdsRecord = { amount, ip: body.ip.trim(), email: body.email.trim().toLowerCase(), score: evaluation.score, level: evaluation.level, decision: evaluation.decision, elapsedMs: evaluation.elapsedMs };
      if (evaluation.decision === "block") {
        await db.query(FDS_RECORD_SQL, [null, body.userId, amount, fdsRecord.ip, fdsRecord.email, evaluation.score, evaluation.level, evaluation.decision, evaluation.elapsedMs]);
        return reply.code(403).send({ error: { code: "FDS_BLOCKED", message: "the transaction was blocked by fraud detection" }, fds: fdsView });
      }
      // The FDS record is written with the order, in its transaction: no order without its decision on record.
      const placed = await placeOrder(db, deps.jobs, { userId: body.userId, items: body.items, ...(body.shippingAddress ? { shippingAddress: body.shippingAddress } : {}) }, fdsRecord);
      return reply.code(201).send({ orderId: placed.orderId, total: placed.total, fds: fdsView, emailTaskId: placed.emailTaskId });
    });

    app.get("/orders/:id(^\\d{1,18}$)", async (request, reply) => {
      const id = Number((request.params as { id: string }).id);
      let { rows } = await db.query(ORDER_READ_SQL, [id], { prepare: STATEMENT.read });
      // Not yet on the replica (just created): the primary has it.
      if (rows.length === 0) ({ rows } = await db.query(ORDER_READ_SQL, [id], { fresh: true, prepare: STATEMENT.read }));
      const o = rows[0];
      if (!o) throw new HttpError(404, "ORDER_NOT_FOUND", `order ${id} does not exist`, "id");
      return reply.send({ id: Number(o.id), userId: Number(o.user_id), status: o.status, total: o.total_amount, createdAt: o.created_at, items: o.items ?? [], servedBy: o.from_replica ? "replica" : "primary" });
    });

    app.post("/fds/evaluate", { schema: { body: evaluateBody } }, async (request, reply) => {
      const e = await evaluate(request, request.body);
      return reply.send({ score: e.score, level: e.level, decision: e.decision, factors: e.factors, elapsedMs: e.elapsedMs });
    });
  };
}
