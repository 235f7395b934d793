/**
 * The dead-letter queue as an operator acts on it: list what is there and why, send tasks back, purge.
 *
 * A task lands in `shopfds.dead` after its retries (FR-021), or as poison (malformed, unknown, its worker
 * lost each time), with the worker's `x-shopfds-reason`, `x-shopfds-queue`, `x-shopfds-dead-at` headers.
 *
 * - `list` reads without taking: it holds the messages it looks at unacknowledged and gives them all
 *   back (`nack`, requeued: RabbitMQ puts them back in their places), so the queue is as it was.
 * - `redrive` publishes each chosen message, with a confirm, to the queue it died in, its retries reset
 *   to 0 and the dead-letter headers replaced by `x-shopfds-redriven` (how many times) and
 *   `x-shopfds-redrive-reason` (who and why); only then is the dead letter acknowledged. A crash between
 *   the confirm and the ack leaves the dead letter in place to be redriven again: at least once, under
 *   the same task id, which is what the tasks' own claims deduplicate on (service/tasks.ts).
 *   Bounded: at most `limit` messages (default 100), each redriven once per call.
 * - `purge` empties the queue and returns how many went; asking for confirmation is the caller's
 *   (the CLI asks for the count, the admin route for `?confirm=<count>`).
 *
 * Arguments are shown redacted: values under secret-looking keys (the logger's list, and e-mail,
 * address, phone, secret) and anything shaped like an e-mail address or a card number.
 */
import amqp, { type ChannelModel, type ConfirmChannel, type GetMessage } from "amqplib";
import { InputError } from "../errors";
import { type ServerTls, verifiedTls } from "../tls";
import { typedTable } from "./amqp-table";
import { DEAD_LETTER_QUEUE, TASK_QUEUE } from "./topology";

export interface DeadLettersOptions {
  readonly url: string;
  readonly tls?: ServerTls;
  /** @default "shopfds.dead" */
  readonly queue?: string;
}

/** One dead letter as an operator reads it. */
export interface DeadLetter {
  readonly id: string;
  readonly task: string;
  /** Redacted (see the module's note). */
  readonly args: unknown[];
  readonly kwargs: Record<string, unknown>;
  /** Why it died: the worker's reason (the last error for a task that failed). */
  readonly reason: string;
  /** Retries it had used. */
  readonly retries: number;
  /** The queue it died in (where a redrive sends it). */
  readonly queue: string;
  readonly deadAt?: string;
  readonly worker?: string;
  /** Times it was redriven before. */
  readonly redriven: number;
}

/** What to redrive: named tasks (by id), every dead letter of a task name, or all. */
export type RedriveSelection = { readonly ids: readonly string[] } | { readonly task: string } | { readonly all: true };

export interface RedriveOptions {
  /** Why, recorded in the message (`x-shopfds-redrive-reason`) and returned. */
  readonly reason: string;
  /** Who: an admin's account, or `cli:<user>`. */
  readonly actor: string;
  /** At most this many messages. @default 100 (at most 10 000) */
  readonly limit?: number;
}

/** A bad redrive or list request; `field` names what was wrong. */
export class DeadLetterError extends InputError {}

const DEAD_HEADERS = ["x-shopfds-reason", "x-shopfds-worker", "x-shopfds-dead-at", "x-shopfds-queue", "x-shopfds-redeliveries", "x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason"];
const SECRET_KEY = /pass(word)?|secret|token|card|authorization|cookie|e-?mail|address|phone/i;
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const CARD = /^\d[\d -]{11,22}\d$/;
const MAX_LIMIT = 10_000;
const MAX_SCAN = 100_000;

/** A value with its secrets replaced by "[redacted]" (keys and shapes; see the module's note). */
export function redactTaskValue(value: unknown, key?: string): unknown {
  if (key !== undefined && SECRET_KEY.test(key)) return "[redacted]";
  if (typeof value === "string") return EMAIL.test(value) || CARD.test(value) ? "[redacted]" : value;
  if (Array.isArray(value)) return value.map((v) => redactTaskValue(v));
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactTaskValue(v, k)]));
  return value;
}

function describe(m: GetMessage): DeadLetter {
  const h = (m.properties.headers ?? {}) as Record<string, unknown>;
  let args: unknown[] = [];
  let kwargs: Record<string, unknown> = {};
  try {
    const body = JSON.parse(m.content.toString("utf8")) as unknown;
    if (Array.isArray(body)) {
      args = Array.isArray(body[0]) ? (body[0] as unknown[]) : [];
      kwargs = body[1] !== null && typeof body[1] === "object" && !Array.isArray(body[1]) ? (body[1] as Record<string, unknown>) : {};
    }
  } catch {
    // A malformed message died for that reason; it is listed with what its headers say.
  }
  const str = (v: unknown) => (typeof v === "string" ? v : Buffer.isBuffer(v) ? v.toString("utf8") : undefined);
  return {
    id: str(h.id) ?? m.properties.correlationId ?? `(no id, ${m.fields.deliveryTag})`,
    task: str(h.task) ?? "(malformed)",
    args: redactTaskValue(args) as unknown[],
    kwargs: redactTaskValue(kwargs) as Record<string, unknown>,
    reason: str(h["x-shopfds-reason"]) ?? str(h["x-first-death-reason"]) ?? "(no reason recorded)",
    retries: typeof h.retries === "number" ? h.retries : 0,
    queue: str(h["x-shopfds-queue"]) ?? TASK_QUEUE,
    ...(str(h["x-shopfds-dead-at"]) ? { deadAt: str(h["x-shopfds-dead-at"])! } : {}),
    ...(str(h["x-shopfds-worker"]) ? { worker: str(h["x-shopfds-worker"])! } : {}),
    redriven: typeof h["x-shopfds-redriven"] === "number" ? h["x-shopfds-redriven"] : 0,
  };
}

export class DeadLetters {
  private constructor(
    private readonly connection: ChannelModel,
    private readonly channel: ConfirmChannel,
    readonly queue: string,
  ) {}

  static async connect(o: DeadLettersOptions): Promise<DeadLetters> {
    const tls = verifiedTls("rabbitmq.tls", o.tls);
    if (tls && !o.url.startsWith("amqps://")) throw new DeadLetterError("rabbitmq.url", "rabbitmq.url: must be amqps:// when rabbitmq.tls is set");
    const connection = await amqp.connect(o.url, { ...tls, timeout: 5000, clientProperties: { connection_name: "shopfds dead letters" } });
    const channel = await connection.createConfirmChannel();
    const queue = o.queue ?? DEAD_LETTER_QUEUE;
    await channel.checkQueue(queue);
    return new DeadLetters(connection, channel, queue);
  }

  async count(): Promise<number> {
    return (await this.channel.checkQueue(this.queue)).messageCount;
  }

  /** Up to `limit` dead letters (of `task`, when given), oldest first; the queue is left as it was. */
  async list(o: { limit?: number; task?: string } = {}): Promise<DeadLetter[]> {
    const limit = boundedLimit(o.limit);
    const found: DeadLetter[] = [];
    await this.scan((_m, d) => {
      if (found.length < limit && (o.task === undefined || d.task === o.task)) found.push(d);
      return false;
    }, () => found.length >= limit);
    return found;
  }

  /** Sends the chosen dead letters back to their queues (see the module's note); returns them. */
  async redrive(select: RedriveSelection, o: RedriveOptions): Promise<{ redriven: DeadLetter[] }> {
    if (!o.reason.trim()) throw new DeadLetterError("reason", "reason: must say why the tasks are sent back (got nothing)");
    if (!o.actor.trim()) throw new DeadLetterError("actor", "actor: must name who sends them back (got nothing)");
    if ("ids" in select && select.ids.length === 0) throw new DeadLetterError("ids", "ids: must name at least one task id (got none)");
    const limit = boundedLimit(o.limit);
    const wanted = "ids" in select ? new Set(select.ids) : undefined;
    const redriven: DeadLetter[] = [];
    const taken: GetMessage[] = [];
    await this.scan(
      (m, d) => {
        const chosen = redriven.length < limit && ("all" in select || ("task" in select && d.task === select.task) || (wanted?.has(d.id) ?? false));
        if (!chosen) return false;
        const headers = { ...(m.properties.headers ?? {}) } as Record<string, unknown>;
        for (const k of DEAD_HEADERS) delete headers[k];
        headers.retries = 0;
        headers["x-shopfds-redriven"] = d.redriven + 1;
        headers["x-shopfds-redrive-reason"] = `${o.actor}: ${o.reason}`.slice(0, 500);
        this.channel.publish("", d.queue, m.content, { ...m.properties, headers: typedTable(headers) });
        redriven.push(d);
        taken.push(m);
        return true;
      },
      () => redriven.length >= limit || (wanted !== undefined && redriven.length >= wanted.size),
      async () => {
        // Every publish confirmed before any dead letter is let go.
        await this.channel.waitForConfirms();
        for (const m of taken) this.channel.ack(m);
      },
    );
    return { redriven };
  }

  /** Empties the queue; returns how many dead letters went. */
  async purge(): Promise<number> {
    return (await this.channel.purgeQueue(this.queue)).messageCount;
  }

  async close(): Promise<void> {
    await this.channel.close().catch(() => undefined);
    await this.connection.close().catch(() => undefined);
  }

  /**
   * Looks at the queue's messages in order, holding each unacknowledged; `visit` returns true for one it
   * has taken (its caller acks it in `settle`); every other one is given back when the scan ends.
   */
  private async scan(visit: (m: GetMessage, d: DeadLetter) => boolean, enough: () => boolean, settle?: () => Promise<void>): Promise<void> {
    // Messages looked at stay unacknowledged until the end, so `get` never returns one twice; the
    // queue is bounded (100 000 by its policy), and so is the scan.
    const held: GetMessage[] = [];
    try {
      for (let seen = 0; seen < MAX_SCAN && !enough(); seen++) {
        const m = await this.channel.get(this.queue, { noAck: false });
        if (!m) break;
        if (!visit(m, describe(m))) held.push(m);
      }
      await settle?.();
    } finally {
      for (const m of held) this.channel.nack(m, false, true);
      // A round trip on the same channel: the broker has put them back before this returns.
      await this.channel.checkQueue(this.queue).catch(() => undefined);
    }
  }
}

function boundedLimit(limit: number | undefined): number {
  const n = limit ?? 100;
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw new DeadLetterError("limit", `limit: must be a whole number from 1 to ${MAX_LIMIT} (got ${JSON.stringify(limit)})`);
  return n;
}
