/** POST /orders, GET /orders/:id and POST /fds/evaluate: the order path, through the FDS decision. */
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import type { Evaluation, Transaction } from "@shopfds/runtime/fds";
import { HttpError } from "@shopfds/runtime/http";
import { checkoutSchema, ORDER_READ_SQL, placeOrder, STATEMENT } from "../../shop/orders";
import type { App, AppDeps } from "../deps";

const evaluateBody = z.object({ userId: z.number().int().positive().optional(), amount: z.number().nonnegative().max(1e12), ip: z.string().max(64), email: z.string().max(254), card: z.string().min(12, "must be a card number").max(32).optional() }).strict();

export function orderRoutes(deps: AppDeps) {
  const { db, fds, metrics } = deps;

  /** An FDS decision, counted in the metrics and put on the request's access line (Kibana's FDS block rate). */
  function observe(request: FastifyRequest, evaluation: Evaluation): void {
    metrics.observeEvaluation(evaluation);
    request.logLabels.fds_decision = evaluation.decision;
  }
  async function evaluate(request: FastifyRequest, transaction: Transaction): Promise<Evaluation> {
    const evaluation = await fds.evaluate(transaction);
    observe(request, evaluation);
    return evaluation;
  }

  return async (app: App) => {
    app.post("/orders", { schema: { body: checkoutSchema } }, async (request, reply) => {
      const outcome = await placeOrder({ db, fds, jobs: deps.jobs, onEvaluation: (e) => observe(request, e) }, request.body);
      const e = outcome.evaluation;
      const fdsView = { score: e.score, level: e.level, decision: e.decision, reasons: e.factors.map((f) => f.rule) };
      if (outcome.kind === "blocked") return reply.code(403).send({ error: { code: "FDS_BLOCKED", message: "the transaction was blocked by fraud detection" }, fds: fdsView });
      return reply.code(201).send({ orderId: outcome.order.orderId, total: outcome.order.total, fds: fdsView, emailTaskId: outcome.order.emailTaskId });
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
