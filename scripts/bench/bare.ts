/**
 * The bench's bare baselines for the order path: the route's database work with nothing around it
 * (`bareOrderWork`: the prices read and the order's statement through writeOrder, the very statement
 * placeOrder runs (its own transaction), with its FDS record, both prepared under the service's names), and, run as a process of
 * its own (`tsx scripts/bench/bare.ts <port>`), the same work behind a bare node:http server: POST /orders
 * and GET /orders/:id (the service's prepared read) with no framework, no FDS evaluation, no task, no logs. Beside the service's figures,
 * they say what the database costs, what HTTP costs on this machine, and what the service adds.
 */
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import pg from "pg";
import { loadStackOutputs } from "../../runtime/outputs";
import { ORDER_READ_SQL, parseOrder, PRICES_SQL, STATEMENT, writeOrder } from "../../service/shop/orders";

export interface BareOrder {
  readonly userId: number;
  readonly items: { productId: number; quantity: number }[];
  readonly ip: string;
  readonly email: string;
}

/** One order's database work on `pool`; resolves with the order id. */
export async function bareOrderWork(pool: pg.Pool, body: BareOrder): Promise<number> {
  const order = parseOrder({ userId: body.userId, items: body.items });
  const { rows } = await pool.query<{ id: string; price: string }>({ name: STATEMENT.prices, text: PRICES_SQL, values: [order.items.map((i) => i.productId)] });
  const amount = order.items.reduce((n, i) => n + Number(rows.find((r) => Number(r.id) === i.productId)!.price) * i.quantity, 0);
  const { orderId } = await writeOrder((c) => pool.query(c), order, randomUUID(), { amount, ip: body.ip, email: body.email, score: 0, level: "low", decision: "approve", elapsedMs: 0 });
  return orderId;
}

async function main(port: number): Promise<void> {
  const o = (await loadStackOutputs()).postgres;
  const pools = { primary: new pg.Pool({ ...o.primary, database: o.database, user: o.user, password: o.password, max: 8 }), replica: new pg.Pool({ ...o.replicas[0]!, database: o.database, user: o.user, password: o.password, max: 8 }) };
  const server = createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
    };
    const fail = (e: Error) => reply(500, { error: e.message });
    if (req.method === "GET" && req.url === "/ready") return reply(200, {});
    if (req.method === "GET" && req.url?.startsWith("/orders/")) {
      void pools.replica.query({ name: STATEMENT.read, text: ORDER_READ_SQL, values: [Number(req.url.slice("/orders/".length))] }).then(({ rows }) => reply(rows[0] ? 200 : 404, rows[0] ?? {}), fail);
      return;
    }
    if (req.method === "POST" && req.url === "/orders") {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => void bareOrderWork(pools.primary, JSON.parse(Buffer.concat(chunks).toString("utf8"))).then((orderId) => reply(201, { orderId }), fail));
      return;
    }
    reply(404, {});
  });
  server.listen(port, "127.0.0.1");
  process.once("SIGTERM", () => server.close(() => void Promise.all([pools.primary.end(), pools.replica.end()]).then(() => process.exit(0))));
}

if (require.main === module) void main(Number(process.argv[2]));
