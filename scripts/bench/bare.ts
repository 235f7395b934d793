/**
 * The bench's bare baselines for the order path: the route's database work with nothing around it
 * (`bareOrderWork`: the prices read and the order's statement through writeOrder, the very statement
 * placeOrder runs (its own transaction), with its FDS record, both prepared under the service's names), and, run as a process of
 * its own (`tsx scripts/bench/bare.ts <port>`), the same work behind a bare node:http server: POST /orders
 * and GET /orders/:id (the service's prepared read) with no framework, no FDS evaluation, no task, no logs. Beside the service's figures,
 * they say what the database costs, what HTTP costs on this machine, and what the service adds.
 *
 * The bare pipeline (issue 27's baseline: the same work as the service end to end, nothing around it):
 * - `tsx scripts/bench/bare.ts pipeline <port>`: the HTTP server above whose POST /orders also publishes
 *   the e-mail task after the commit (its id the outbox row's, a persistent message on a confirm channel,
 *   the answer after the confirm), as the service does; no Celery headers, no FDS, no logs, no metrics;
 * - `tsx scripts/bench/bare.ts consumer`: a bare consumer of that queue (amqplib, prefetch 4, ack after
 *   the work): per message the e-mail task's own claim-and-read statement, the e-mail over SMTP through
 *   the worker's transport (service/mail.ts, 4 pooled connections) to the stack's SMTP sink, the task's own
 *   "done" statement. No events, no result, no retries, no rate limits, no remote control.
 */
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import amqp from "amqplib";
import pg from "pg";
import { loadStackOutputs } from "../../runtime/outputs";
import { TASK_QUEUE_ARGUMENTS } from "../../runtime/jobs/topology";
import { ORDER_READ_SQL, parseOrder, PRICES_SQL, STATEMENT, writeOrder } from "../../service/shop/orders";
import { claimWithRead, MARK_DONE_SQL, ORDER_EMAIL_READ_SQL, orderEmail, type OrderEmailRow } from "../../service/tasks";
import { mailTransport } from "../../service/mail";

/** The bare pipeline's e-mail queue (declared as the service's task queues are). */
export const BARE_EMAIL_QUEUE = "shopfds.bench.bare-email";
const BARE_CONSUMER_PREFETCH = 4;

export interface BareOrder {
  readonly userId: number;
  readonly items: { productId: number; quantity: number }[];
  readonly ip: string;
  readonly email: string;
}

/** One order's database work on `pool`; resolves with the order id. */
export async function bareOrderWork(pool: pg.Pool, body: BareOrder, publish?: (taskId: string, orderId: number) => Promise<void>): Promise<number> {
  const order = parseOrder({ userId: body.userId, items: body.items });
  const { rows } = await pool.query<{ id: string; price: string }>({ name: STATEMENT.prices, text: PRICES_SQL, values: [order.items.map((i) => i.productId)] });
  const amount = order.items.reduce((n, i) => n + Number(rows.find((r) => Number(r.id) === i.productId)!.price) * i.quantity, 0);
  const taskId = randomUUID();
  const { orderId } = await writeOrder((c) => pool.query(c), order, taskId, { amount, ip: body.ip, email: body.email, score: 0, level: "low", decision: "approve", elapsedMs: 0 });
  await publish?.(taskId, orderId);
  return orderId;
}

/** The pipeline's publish: persistent, on a confirm channel, resolved on the broker's confirm. */
async function barePublisher(url: string): Promise<{ publish: (taskId: string, orderId: number) => Promise<void>; close: () => Promise<void> }> {
  const connection = await amqp.connect(url);
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue(BARE_EMAIL_QUEUE, { durable: true, arguments: { ...TASK_QUEUE_ARGUMENTS } });
  return {
    publish: (taskId, orderId) =>
      new Promise<void>((resolve, reject) => {
        channel.publish("", BARE_EMAIL_QUEUE, Buffer.from(JSON.stringify([orderId])), { messageId: taskId, persistent: true, contentType: "application/json" }, (error) => (error ? reject(error) : resolve()));
      }),
    close: () => connection.close(),
  };
}

/** The bare consumer: claim and read, send, mark done, ack; a failure is logged and the message dropped. */
async function consumer(): Promise<void> {
  const outputs = await loadStackOutputs();
  const o = outputs.postgres;
  const pool = new pg.Pool({ ...o.primary, database: o.database, user: o.user, password: o.password, max: BARE_CONSUMER_PREFETCH });
  const mailer = mailTransport(outputs.smtp!, BARE_CONSUMER_PREFETCH);
  const connection = await amqp.connect(outputs.rabbitmq.url);
  const channel = await connection.createChannel();
  await channel.assertQueue(BARE_EMAIL_QUEUE, { durable: true, arguments: { ...TASK_QUEUE_ARGUMENTS } });
  await channel.prefetch(BARE_CONSUMER_PREFETCH);
  const host = `bare-consumer-${process.pid}`;
  await channel.consume(BARE_EMAIL_QUEUE, (message) => {
    if (!message) return;
    const taskId = String(message.properties.messageId);
    const args = JSON.parse(message.content.toString("utf8")) as [number];
    const claim = [taskId, "email", "bench.bare_email", 0, JSON.stringify(args), host, args[0]];
    void (async () => {
      const { rows } = await pool.query<{ claimed: boolean } & OrderEmailRow>({ name: "bare.claim-read", text: claimWithRead(ORDER_EMAIL_READ_SQL), values: claim });
      if (rows[0]?.claimed && rows[0].id !== null) {
        await mailer.sendMail(orderEmail(rows[0], outputs.smtp!.from));
        await pool.query({ name: "bare.done", text: MARK_DONE_SQL, values: [taskId, 0] });
      }
    })().then(
      () => channel.ack(message),
      (e: Error) => {
        console.error(`bare consumer: task ${taskId}: ${e.message}`);
        channel.ack(message);
      },
    );
  });
  process.once("SIGTERM", () => void connection.close().then(() => Promise.all([pool.end(), mailer.close()])).then(() => process.exit(0)));
}

async function main(port: number, pipeline: boolean): Promise<void> {
  const outputs = await loadStackOutputs();
  const o = outputs.postgres;
  const publisher = pipeline ? await barePublisher(outputs.rabbitmq.url) : undefined;
  const pools = { primary: new pg.Pool({ ...o.primary, database: o.database, user: o.user, password: o.password, max: 8 }), replica: new pg.Pool({ ...o.replicas[0]!, database: o.database, user: o.user, password: o.password, max: 8 }) };
  // Requests read but not yet answered: wrk stops with some in flight, and an order committed after the
  // next run began would count as that run's (GET /ready says how many; the bench waits for none).
  let inflight = 0;
  const server = createServer((req, res) => {
    inflight++;
    const reply = (status: number, body: unknown) => {
      inflight--;
      const text = JSON.stringify(body);
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
    };
    const fail = (e: Error) => reply(500, { error: e.message });
    if (req.method === "GET" && req.url === "/ready") return reply(200, { inflight: inflight - 1 });
    if (req.method === "GET" && req.url?.startsWith("/orders/")) {
      void pools.replica.query({ name: STATEMENT.read, text: ORDER_READ_SQL, values: [Number(req.url.slice("/orders/".length))] }).then(({ rows }) => reply(rows[0] ? 200 : 404, rows[0] ?? {}), fail);
      return;
    }
    if (req.method === "POST" && req.url === "/orders") {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => void bareOrderWork(pools.primary, JSON.parse(Buffer.concat(chunks).toString("utf8")), publisher?.publish).then((orderId) => reply(201, { orderId }), fail));
      return;
    }
    reply(404, {});
  });
  server.listen(port, "127.0.0.1");
  process.once("SIGTERM", () => server.close(() => void Promise.all([pools.primary.end(), pools.replica.end(), publisher?.close()]).then(() => process.exit(0))));
}

if (require.main === module) {
  const [mode, port] = process.argv.slice(2);
  const fail = (e: Error) => {
    console.error(`bare ${mode}: ${e.message}`);
    process.exit(1);
  };
  if (mode === "consumer") consumer().catch(fail);
  else if (mode === "pipeline") main(Number(port), true).catch(fail);
  else main(Number(mode), false).catch(fail);
}
