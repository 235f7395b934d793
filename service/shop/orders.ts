/**
 * Placing an order: validates the input, prices it from the products table, takes the stock, writes the
 * order and its items on the primary in one transaction, and enqueues the confirmation e-mail (FR-016)
 * without waiting for it to be sent.
 *
 * The e-mail task is recorded in `task_log` (state pending) in the same transaction, with its task id,
 * before it is published: if publishing fails after the commit, the order still has its e-mail on
 * record, and the stale-task check re-sends it (a transactional outbox). The worker recognises the id,
 * so a task that arrives twice sends one e-mail.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { QueryResult, QueryResultRow } from "pg";
import type { Database } from "@shopfds/runtime/db";
import { BrokerUnavailableError, EMAIL_QUEUE } from "@shopfds/runtime/jobs";
import { InputError } from "@shopfds/runtime";
import type { Evaluation, FraudDetector } from "@shopfds/runtime/fds";

export const ORDER_EMAIL_TASK = "shopfds.send_order_confirmation";

/**
 * Where each ShopFDS task goes (the producers' `routes`, Celery's task_routes): e-mail on its own queue
 * and worker, so a slow or hung SMTP server holds only e-mail slots; everything else on "celery".
 */
export const TASK_ROUTES: Readonly<Record<string, string>> = { [ORDER_EMAIL_TASK]: EMAIL_QUEUE };

export interface TaskSender {
  send(name: string, args?: readonly unknown[], kwargs?: Readonly<Record<string, unknown>>, options?: { id?: string; ignoreResult?: boolean }): Promise<{ id: string }>;
}

/** What placing an order needs of the producer (TaskProducer fits): whether the broker is there, and a send that survives its absence. */
export interface OrderTaskSender extends TaskSender {
  readonly connected: boolean;
  sendOrDefer(name: string, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>, options: { id: string; ignoreResult?: boolean }): Promise<{ id: string; deferred: boolean }>;
}

/** An order lists each product once (its quantity says how many); order_items is unique per product. */
export function noRepeatedProduct(order: { items: readonly { productId: number }[] }, ctx: z.RefinementCtx): void {
  const seen = new Set<number>();
  order.items.forEach((item, i) => {
    if (seen.has(item.productId)) ctx.addIssue({ code: "custom", path: ["items", i, "productId"], message: `product ${item.productId} is listed twice: give it once with its quantity` });
    seen.add(item.productId);
  });
}

const orderFields = z.object({
  userId: z.number({ error: "must be a user id (a number)" }).int("must be a whole number").positive("must be a user id (a positive number)"),
  items: z
    .array(
      z
        .object({
          productId: z.number({ error: "must be a product id" }).int().positive(),
          quantity: z.number({ error: "must be a number" }).int("must be a whole number").min(1, "must be at least 1").max(1000, "must be at most 1000"),
        })
        .strict(),
    )
    .min(1, "must hold at least one item")
    .max(100, "must hold at most 100 items"),
  shippingAddress: z.record(z.string().max(64), z.string().max(256)).default({}),
});
/** An order: who, what, where to. */
const orderSchema = orderFields.strict().superRefine(noRepeatedProduct);
/** A checkout (POST /orders): the order and what the FDS evaluates (the client's IP, e-mail and card). The route validates with it, once. */
export const checkoutSchema = orderFields
  .extend({
    ip: z.string({ error: "must be the client's IP address" }).max(64),
    email: z.string({ error: "must be an e-mail address" }).max(254),
    card: z.string({ error: "must be a card number (a string of digits)" }).min(12, "must be a card number").max(32, "must be at most 32 characters").optional(),
  })
  .strict()
  .superRefine(noRepeatedProduct);
export type Checkout = z.output<typeof checkoutSchema>;
export type OrderInput = z.input<typeof orderSchema>;

/** Bad order input; `field` is the path (`items.0.quantity`), the message says what is wrong. */
export class OrderInputError extends InputError {
  constructor(
    field: string,
    readonly problem: string,
  ) {
    super(field, `${field}: ${problem}`);
  }
}

/** An item names a product that does not exist (HTTP 422 UNKNOWN_PRODUCT). */
export class UnknownProductError extends OrderInputError {
  override readonly code = "UNKNOWN_PRODUCT";
}

/** Runs one named (prepared) statement: the router on the primary in the service, a bare pool in the bench's baseline. */
export type RunStatement = <R extends QueryResultRow = any>(config: { name: string; text: string; values: unknown[] }) => Promise<QueryResult<R>>;

/**
 * The order path's hot statements run as named prepared statements (parsed and planned once per
 * connection; the router's `prepare` option), under these names wherever they run, the bench's bare
 * baselines included.
 */
export const STATEMENT = { prices: "shop.order-prices", write: "shop.order-write", read: "shop.order-read" } as const;

/** The prices of the ordered products, read before the FDS evaluation (it needs the amount). */
export const PRICES_SQL = "SELECT id, price FROM products WHERE id = ANY($1::bigint[])";

/** One order with its items, as GET /orders/:id answers it; `from_replica` says which server answered. */
export const ORDER_READ_SQL = `SELECT o.id, o.user_id, o.status, o.total_amount, o.created_at, pg_is_in_recovery() AS from_replica,
    (SELECT json_agg(json_build_object('productId', product_id, 'quantity', quantity, 'unitPrice', unit_price) ORDER BY product_id) FROM order_items WHERE order_id = o.id) AS items
  FROM orders o WHERE o.id = $1`;

/** One FDS decision on record (`fds_transactions`), with its order or none (blocked). */
export const FDS_RECORD_SQL =
  "INSERT INTO fds_transactions (order_id, user_id, amount, ip_address, email, risk_score, risk_level, decision, evaluation_ms) VALUES ($1, $2, $3, $4::inet, $5, $6, $7, $8, $9)";

/** An order's FDS decision, written with the order (same transaction) to `fds_transactions`. */
export interface FdsRecord {
  readonly amount: number;
  readonly ip: string;
  readonly email: string;
  readonly score: number;
  readonly level: string;
  readonly decision: string;
  readonly elapsedMs: number;
}

/**
 * One statement for the whole order, and so one transaction of its own (one round trip, where a
 * transaction around it added BEGIN and COMMIT, and a statement per item and per table took 5 + items):
 * the products are locked in id order (two orders for the same products never wait on each other in a
 * cycle), and only when every item can be taken (the product exists, is for sale, has the stock, as the
 * locked rows say) the stock is taken and the order, its items, the e-mail's outbox row and the FDS
 * record written; otherwise nothing is written and `short` names the first item that could not be taken
 * and why, so a refused order costs no second statement.
 *
 * Under READ COMMITTED a row another order changed meanwhile is locked in its committed version (FOR
 * UPDATE re-reads it), so the check and the UPDATE see the stock as it is.
 */
const WRITE_ORDER_SQL = `WITH wanted AS (
    SELECT * FROM unnest($2::bigint[], $3::int[]) WITH ORDINALITY AS w(product_id, quantity, i)
  ), locked AS (
    SELECT p.id, p.stock, p.is_active FROM products p WHERE p.id = ANY($2::bigint[]) ORDER BY p.id FOR UPDATE
  ), short AS (
    SELECT w.i, l.id IS NOT NULL AS found, coalesce(l.is_active, false) AS is_active, coalesce(l.stock, 0) AS stock
      FROM wanted w LEFT JOIN locked l ON l.id = w.product_id
     WHERE l.id IS NULL OR NOT l.is_active OR l.stock < w.quantity
     ORDER BY w.i LIMIT 1
  ), taken AS (
    UPDATE products p SET stock = p.stock - w.quantity, updated_at = now()
      FROM wanted w
     WHERE p.id = w.product_id AND p.id IN (SELECT id FROM locked) AND NOT EXISTS (SELECT 1 FROM short)
    RETURNING p.id, p.price, w.quantity
  ), placed AS (
    INSERT INTO orders (user_id, total_amount, shipping_address)
    SELECT $1, sum(price * quantity), $4 FROM taken HAVING count(*) = cardinality($2::bigint[])
    RETURNING id, total_amount
  ), items AS (
    INSERT INTO order_items (order_id, product_id, quantity, unit_price)
    SELECT placed.id, taken.id, taken.quantity, taken.price FROM placed, taken
  ), outbox AS (
    INSERT INTO task_log (task_id, task_type, task_name, state, args)
    SELECT $5, 'email', $6, 'pending', jsonb_build_array(placed.id) FROM placed
  ), fds AS (
    INSERT INTO fds_transactions (order_id, user_id, amount, ip_address, email, risk_score, risk_level, decision, evaluation_ms)
    SELECT placed.id, $1, $8, $9::inet, $10, $11, $12, $13, $14 FROM placed WHERE $7
  )
  SELECT (SELECT id FROM placed) AS id, (SELECT total_amount FROM placed) AS total_amount, (SELECT row_to_json(short) FROM short) AS short`;

/**
 * The order's database work, as one statement through `run` (its own transaction): takes the stock,
 * writes the order, its items, the e-mail's outbox row (`task_log`, pending) and, when given, its FDS
 * record; or, when an item cannot be taken, writes nothing and names it. Exported so the benchmark's bare
 * baseline runs exactly this.
 */
export async function writeOrder(run: RunStatement, order: z.output<typeof orderSchema>, emailTaskId: string, fds?: FdsRecord): Promise<{ orderId: number; total: string }> {
  const ids = order.items.map((i) => i.productId);
  const { rows } = await run<{ id: string | null; total_amount: string | null; short: { i: number; found: boolean; is_active: boolean; stock: number } | null }>({
    name: STATEMENT.write,
    text: WRITE_ORDER_SQL,
    values: [
      order.userId,
      ids,
      order.items.map((i) => i.quantity),
      order.shippingAddress,
      emailTaskId,
      ORDER_EMAIL_TASK,
      fds !== undefined,
      fds?.amount ?? 0,
      fds?.ip ?? "0.0.0.0",
      fds?.email ?? "",
      fds?.score ?? 0,
      fds?.level ?? "low",
      fds?.decision ?? "approve",
      fds?.elapsedMs ?? 0,
    ],
  }).catch((e: { code?: string; constraint?: string }) => {
    if (e.code === "23503" && /user/.test(e.constraint ?? "")) throw new OrderInputError("userId", `user ${order.userId} does not exist`);
    throw e;
  });
  const row = rows[0]!;
  if (row.id !== null) return { orderId: Number(row.id), total: row.total_amount! };
  // Not placed, nothing written: the first item that could not be taken, as the locked rows said.
  const short = row.short!;
  const i = short.i - 1;
  const productId = order.items[i]!.productId;
  throw new OrderInputError(`items.${i}`, !short.found ? `product ${productId} does not exist` : !short.is_active ? `product ${productId} is not for sale` : `only ${short.stock} of product ${productId} in stock`);
}

/** Validates an order's input, naming the first bad field. */
export function parseOrder(input: OrderInput): z.output<typeof orderSchema> {
  const parsed = orderSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new OrderInputError(issue.path.map(String).join(".") || "order", issue.message);
  }
  return parsed.data;
}

export interface PlacedOrder {
  readonly orderId: number;
  readonly total: string;
  readonly emailTaskId: string;
  /** The broker could not take the e-mail task after the commit: it is kept and sent when the broker is back. */
  readonly emailDeferred: boolean;
}

/**
 * - Broker unreachable *before* anything is written: BrokerUnavailableError (a 503 with Retry-After; a
 *   retrying client creates nothing twice).
 * - Broker lost *after* the commit: the order stands and its e-mail is on record (the outbox row); the
 *   producer keeps the task and sends it the moment the broker is back (`emailDeferred: true`), and the
 *   stale-task check re-sends it should this process die first. The caller gets its order, not an error.
 */
export async function commitOrder(db: Database, jobs: OrderTaskSender, order: z.output<typeof orderSchema>, fds?: FdsRecord): Promise<PlacedOrder> {
  if (!jobs.connected) throw new BrokerUnavailableError("the order was not placed: the task broker (RabbitMQ) is not reachable now; retry shortly");
  const emailTaskId = randomUUID();
  const placed = await writeOrder((c) => db.query(c.text, c.values, { target: "primary", prepare: c.name }), order, emailTaskId, fds);
  // After the commit (the worker must find the order): sent now, or kept for the broker's return.
  // Nobody waits for the e-mail's result (task_log records how it went): the worker sends none back
  // (Celery's ignore_result), which spares the broker, the worker and this service a message per order.
  const sent = await jobs.sendOrDefer(ORDER_EMAIL_TASK, [placed.orderId], {}, { id: emailTaskId, ignoreResult: true });
  return { ...placed, emailTaskId, emailDeferred: sent.deferred };
}

/** What placing an order needs: the router, the FDS, the producer. */
export interface CheckoutDeps {
  readonly db: Database;
  readonly fds: Pick<FraudDetector, "evaluate">;
  readonly jobs: OrderTaskSender;
  /** Told every decision (metrics, the access line). */
  readonly onEvaluation?: (evaluation: Evaluation) => void;
}

export type OrderOutcome =
  | { readonly kind: "placed"; readonly order: PlacedOrder; readonly evaluation: Evaluation }
  | { readonly kind: "blocked"; readonly evaluation: Evaluation };

/**
 * The order use case, for a checkout validated once (checkoutSchema): prices the items (the primary:
 * a price just changed counts), asks the FDS, and either records the blocked attempt (no order; its FDS
 * record with no order id) or places the order with its FDS record and e-mail in one statement
 * (commitOrder). A product that does not exist is an UnknownProductError naming the item.
 */
export async function placeOrder(deps: CheckoutDeps, checkout: Checkout): Promise<OrderOutcome> {
  const { db } = deps;
  const ids = checkout.items.map((i) => i.productId);
  const { rows } = await db.query<{ id: string; price: string }>(PRICES_SQL, [ids], { fresh: true, prepare: STATEMENT.prices });
  const price = new Map(rows.map((r) => [Number(r.id), Number(r.price)]));
  const missing = checkout.items.findIndex((i) => !price.has(i.productId));
  if (missing >= 0) throw new UnknownProductError(`items.${missing}.productId`, `product ${checkout.items[missing]!.productId} does not exist`);
  const amount = checkout.items.reduce((n, i) => n + price.get(i.productId)! * i.quantity, 0);
  const evaluation = await deps.fds.evaluate({ userId: checkout.userId, amount, ip: checkout.ip, email: checkout.email, ...(checkout.card ? { card: checkout.card } : {}) });
  deps.onEvaluation?.(evaluation);
  const record: FdsRecord = { amount, ip: checkout.ip.trim(), email: checkout.email.trim().toLowerCase(), score: evaluation.score, level: evaluation.level, decision: evaluation.decision, elapsedMs: evaluation.elapsedMs };
  if (evaluation.decision === "block") {
    await db.query(FDS_RECORD_SQL, [null, checkout.userId, amount, record.ip, record.email, evaluation.score, evaluation.level, evaluation.decision, evaluation.elapsedMs]);
    return { kind: "blocked", evaluation };
  }
  // The FDS record is written with the order, in its statement: no order without its decision on record.
  const order = await commitOrder(db, deps.jobs, { userId: checkout.userId, items: checkout.items, shippingAddress: checkout.shippingAddress }, record);
  return { kind: "placed", order, evaluation };
}
