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
import type { Database } from "@shopfds/runtime/db/router";
import { BrokerUnavailableError } from "@shopfds/runtime/jobs/broker-link";

export const ORDER_EMAIL_TASK = "shopfds.send_order_confirmation";

export interface TaskSender {
  send(name: string, args?: readonly unknown[], kwargs?: Readonly<Record<string, unknown>>, options?: { id?: string }): Promise<{ id: string }>;
}

/** What placing an order needs of the producer (TaskProducer fits): whether the broker is there, and a send that survives its absence. */
export interface OrderTaskSender extends TaskSender {
  readonly connected: boolean;
  sendOrDefer(name: string, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>, options: { id: string }): Promise<{ id: string; deferred: boolean }>;
}

/** An order lists each product once (its quantity says how many); order_items is unique per product. */
export function noRepeatedProduct(order: { items: readonly { productId: number }[] }, ctx: z.RefinementCtx): void {
  const seen = new Set<number>();
  order.items.forEach((item, i) => {
    if (seen.has(item.productId)) ctx.addIssue({ code: "custom", path: ["items", i, "productId"], message: `product ${item.productId} is listed twice: give it once with its quantity` });
    seen.add(item.productId);
  });
}

const orderSchema = z
  .object({
    userId: z.number({ error: "must be a user id" }).int().positive(),
    items: z
      .array(
        z.object({
          productId: z.number({ error: "must be a product id" }).int().positive(),
          quantity: z.number({ error: "must be a number" }).int("must be a whole number").min(1, "must be at least 1").max(1000, "must be at most 1000"),
        }),
      )
      .min(1, "must hold at least one item")
      .max(100, "must hold at most 100 items"),
    shippingAddress: z.record(z.string(), z.string()).default({}),
  })
  .strict()
  .superRefine(noRepeatedProduct);
export type OrderInput = z.input<typeof orderSchema>;

/** Bad order input; `field` is the path (`items.0.quantity`), the message says what is wrong. */
export class OrderInputError extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = "OrderInputError";
  }
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
export async function placeOrder(db: Database, jobs: OrderTaskSender, input: OrderInput): Promise<PlacedOrder> {
  const parsed = orderSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new OrderInputError(issue.path.map(String).join(".") || "order", issue.message);
  }
  const order = parsed.data;
  if (!jobs.connected) throw new BrokerUnavailableError("the order was not placed: the task broker (RabbitMQ) is not reachable now; retry shortly");
  const emailTaskId = randomUUID();
  const placed = await db.transaction(async (tx) => {
    let total = 0;
    const lines: { productId: number; quantity: number; price: string }[] = [];
    for (const [i, item] of order.items.entries()) {
      const { rows } = await tx.query<{ price: string }>(
        "UPDATE products SET stock = stock - $2, updated_at = now() WHERE id = $1 AND is_active AND stock >= $2 RETURNING price",
        [item.productId, item.quantity],
      );
      if (rows.length === 0) {
        const { rows: found } = await tx.query<{ stock: number; is_active: boolean }>("SELECT stock, is_active FROM products WHERE id = $1", [item.productId]);
        const f = found[0];
        throw new OrderInputError(`items.${i}`, !f ? `product ${item.productId} does not exist` : !f.is_active ? `product ${item.productId} is not for sale` : `only ${f.stock} of product ${item.productId} in stock`);
      }
      lines.push({ ...item, price: rows[0]!.price });
      total += Number(rows[0]!.price) * item.quantity;
    }
    const { rows } = await tx.query<{ id: string; total_amount: string }>(
      "INSERT INTO orders (user_id, total_amount, shipping_address) VALUES ($1, $2, $3) RETURNING id, total_amount",
      [order.userId, total.toFixed(2), order.shippingAddress],
    ).catch((e: { code?: string }) => {
      if (e.code === "23503") throw new OrderInputError("userId", `user ${order.userId} does not exist`);
      throw e;
    });
    const orderId = Number(rows[0]!.id);
    await tx.query(
      "INSERT INTO order_items (order_id, product_id, quantity, unit_price) SELECT $1, * FROM unnest($2::bigint[], $3::int[], $4::numeric[])",
      [orderId, lines.map((l) => l.productId), lines.map((l) => l.quantity), lines.map((l) => l.price)],
    );
    await tx.query("INSERT INTO task_log (task_id, task_type, task_name, state, args) VALUES ($1, 'email', $2, 'pending', $3)", [emailTaskId, ORDER_EMAIL_TASK, JSON.stringify([orderId])]);
    return { orderId, total: rows[0]!.total_amount };
  });
  // After the commit (the worker must find the order): sent now, or kept for the broker's return.
  const sent = await jobs.sendOrDefer(ORDER_EMAIL_TASK, [placed.orderId], {}, { id: emailTaskId });
  return { ...placed, emailTaskId, emailDeferred: sent.deferred };
}
