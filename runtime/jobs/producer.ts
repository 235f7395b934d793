/**
 * Sends Celery tasks (protocol v2) to RabbitMQ, for TypeScript and Python workers alike.
 *
 * - Durable: publishes on a confirm channel with `mandatory`, so `send` resolves only once the broker
 *   has the message in a queue; a message that no queue takes is an error, never silently dropped.
 * - Results: `send(…).result()` waits for the `rpc://` reply on this producer's own reply queue, as a
 *   Python caller's `AsyncResult.get()` does.
 * - Bounded: a confirm that takes longer than `confirmTimeoutMs` ends the wait (the message may still
 *   arrive: the broker has not refused it). While the broker blocks the connection (a memory or disk
 *   alarm: `connection.blocked`), `send` refuses at once (BrokerBlockedError) and `sendOrDefer` keeps
 *   the task for the unblock without publishing. RabbitMQ tells a connection it is blocked only when it
 *   publishes during the alarm, so the first send after an alarm starts is the one that waits the bound.
 */
import type { ServerTls } from "../tls";
import { randomUUID } from "node:crypto";
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import { TASK_QUEUE } from "./topology";
import { ShopfdsError } from "../errors";
import { typedTable } from "./amqp-table";
import { BrokerBlockedError, BrokerLink, BrokerUnavailableError } from "./broker-link";
import { BuildOptions, buildTaskMessage, encodeTaskMessage, WRITE_LOCATION_HEADER } from "./protocol";
import { argsAfter, CHORD_UNLOCK, optionString, type Signature } from "./canvas";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { injectTraceContext, tracer } from "../observability/trace-context";

export { BrokerBlockedError, BrokerUnavailableError } from "./broker-link";
export interface SendOptions extends Omit<BuildOptions, "replyTo" | "origin" | "now"> {
  /** Queue to route to (through the default exchange). @default the task's route, else "celery" */
  readonly queue?: string;
  /**
   * Where the task must read after (a Database scope's write location): carried in the
   * `x-shopfds-write-location` header, which a worker given `readAfter` applies. @default ProducerOptions.writeLocation's
   */
  readonly writeLocation?: string;
  /** Celery's `link`: tasks sent with this one's result first in their args when it succeeds. */
  readonly link?: readonly Signature[];
  /** Celery's `link_error`: tasks sent with this one's id when it fails for good. */
  readonly linkError?: readonly Signature[];
  /** The rest of a chain, in call order (`[b, c]` for a → b → c): each step gets the previous result first. */
  readonly chain?: readonly Signature[];
  /** Set by `chord()`: the task is item `index` of group `id`, whose results go to the chord's body. */
  readonly group?: { readonly id: string; readonly index: number; readonly chord: Signature };
}

/** What `chord()` sent: the group's id, the body's task id, the header's task ids in order. */
export interface SentChord {
  readonly groupId: string;
  readonly bodyId: string;
  readonly headerIds: readonly string[];
}

export interface SentTask {
  readonly id: string;
  /** Resolves with the task's return value; rejects with TaskFailedError, or on timeout. */
  result(timeoutMs?: number): Promise<unknown>;
}

export class TaskFailedError extends ShopfdsError {
  constructor(
    readonly taskId: string,
    readonly excType: string,
    message: string,
    readonly remoteTraceback: string | null,
  ) {
    super(`task ${taskId} failed: ${excType}: ${message}`);
  }
}

interface Waiter {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/** Results kept for a later `result(id)` call before the oldest is dropped. */
const EARLY_RESULTS_KEPT = 10_000;
/**
 * Deferred sends kept in memory; past it the oldest is forgotten and its outbox row (task_log, pending)
 * is what sends it (the stale-task check re-sends rows pending over 5 minutes).
 */
const DEFERRED_KEPT = 50_000;

interface Deferred {
  readonly name: string;
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  readonly options: SendOptions;
}

export interface ProducerOptions {
  /** AMQPS: verify the broker against this CA (pass the contract's `rabbitmq.tls`). */
  readonly tls?: ServerTls;
  /** Told of connection loss and recovery, and of deferred sends. */
  readonly log?: (line: string) => void;
  /** Longest wait between reconnect attempts. @default 2000 */
  readonly maxReconnectDelayMs?: number;
  /** Longest wait for the broker's confirm of one publish. @default 2000 */
  readonly confirmTimeoutMs?: number;
  /** The queue of each task name sent without a `queue` option (Celery's task_routes); others go to "celery". */
  readonly routes?: Readonly<Record<string, string>>;
  /**
   * Asked at each send for the sender's write location (`() => db.writeLocation()`: the request's
   * scope), so the task reads what the request wrote (read-your-writes across tasks).
   */
  readonly writeLocation?: () => Promise<string | undefined> | string | undefined;
}

export class TaskProducer {
  private readonly replyQueue = randomUUID();
  private readonly waiting = new Map<string, Waiter>();
  private readonly early = new Map<string, { status: string; result: unknown; traceback: string | null }>();
  private readonly returned = new Map<string, (error: Error) => void>();
  /** Sends that could not be made (broker away); made again, in order, once it is back. */
  private readonly deferred = new Map<string, Deferred>();
  /** sendOrDefer's publishes whose confirm is overdue: done when it comes, deferred if the channel dies first. */
  private readonly overdue = new Map<string, Deferred>();
  private readonly confirmTimeoutMs: number;
  private channel?: ConfirmChannel;
  private link?: BrokerLink;
  private flushing?: Promise<void>;

  private constructor(private readonly o: ProducerOptions) {
    this.confirmTimeoutMs = o.confirmTimeoutMs ?? 2000;
    if (!Number.isInteger(this.confirmTimeoutMs) || this.confirmTimeoutMs < 1) throw new RangeError(`confirmTimeoutMs: must be a positive integer of milliseconds (got ${o.confirmTimeoutMs})`);
  }

  /**
   * Connects (the first attempt must succeed) and keeps reconnecting with back-off after any loss,
   * re-creating its channel and reply queue, then re-sending what `sendOrDefer` kept.
   */
  static async connect(url: string, options: ProducerOptions = {}): Promise<TaskProducer> {
    const producer = new TaskProducer(options);
    producer.link = await BrokerLink.open({
      url,
      tls: options.tls,
      name: "shopfds-producer",
      log: options.log,
      maxReconnectDelayMs: options.maxReconnectDelayMs,
      setup: (connection, watch) => producer.setup(connection, watch),
      onDown: () => {
        producer.channel = undefined;
        // Publishes never confirmed died with the channel (or may have): sent again on the next one, same id.
        for (const [id, d] of producer.overdue) producer.keep(id, d);
        producer.overdue.clear();
      },
      onUp: () => void producer.flushDeferred(),
      onUnblocked: () => void producer.flushDeferred(),
    });
    return producer;
  }

  private async setup(connection: ChannelModel, watch: (channel: ConfirmChannel, what: string) => void): Promise<void> {
    const channel = await connection.createConfirmChannel();
    watch(channel, "producer");
    channel.on("return", (msg: ConsumeMessage) => {
      const id = msg.properties.correlationId as string;
      this.returned.get(id)?.(new Error(`task ${id}: no queue named "${msg.fields.routingKey}" took the message (is the broker's definition loaded?)`));
    });
    // The reply queue must exist before the first task is sent, or a fast result would be lost.
    // As Celery's rpc backend declares it: non-durable, auto-delete, expiring after a day unused.
    await channel.assertQueue(this.replyQueue, { durable: false, autoDelete: true, arguments: { "x-expires": 86_400_000 } });
    await channel.consume(this.replyQueue, (msg) => msg && this.onReply(msg), { noAck: true });
    this.channel = channel;
  }

  /** Connected to the broker now: a send can be tried (a request answers 503 before writing anything otherwise). */
  get connected(): boolean {
    return this.channel !== undefined;
  }

  /** Why and since when the broker blocks this producer's connection (a resource alarm), or undefined. */
  get blocked(): { readonly reason: string; readonly since: number } | undefined {
    return this.link?.blocked;
  }

  /** This producer with every send routed to `queue` (a service or test with a queue of its own). */
  forQueue(queue: string): { readonly connected: boolean; readonly blocked: TaskProducer["blocked"]; send: TaskProducer["send"]; sendOrDefer: TaskProducer["sendOrDefer"] } {
    const producer = this;
    return {
      get connected() {
        return producer.connected;
      },
      get blocked() {
        return producer.blocked;
      },
      send: (name, args, kwargs, options = {}) => producer.send(name, args, kwargs, { ...options, queue }),
      sendOrDefer: (name, args, kwargs, options) => producer.sendOrDefer(name, args, kwargs, { ...options, queue }),
    };
  }

  /** Messages waiting in `queue`, read over this producer's own connection (for health checks). */
  async queueDepth(queue: string): Promise<number> {
    const channel = await this.link!.connection().createChannel();
    channel.on("error", () => undefined);
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** Sends kept for the broker's return, and those on their way past the confirm bound. */
  get pendingDeferred(): number {
    return this.deferred.size + this.overdue.size;
  }

  /**
   * Publishes a task and resolves once the broker has confirmed it into a queue. While the broker is
   * away it fails at once with BrokerUnavailableError (never waits for the reconnect); while it blocks
   * the connection, with BrokerBlockedError; a confirm overdue past `confirmTimeoutMs` is a
   * BrokerUnavailableError too, though the message may still arrive (every task here is idempotent by id).
   */
  async send(name: string, args: readonly unknown[] = [], kwargs: Readonly<Record<string, unknown>> = {}, options: SendOptions = {}): Promise<SentTask> {
    options = await this.withWriteLocation(options);
    const { id, confirmed } = this.publish(name, args, kwargs, options);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        confirmed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(this.overdueError(id, name)), this.confirmTimeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return { id, result: (timeoutMs = 30_000) => this.result(id, timeoutMs) };
  }

  private overdueError(id: string, name: string): BrokerUnavailableError {
    const blocked = this.blocked;
    return blocked
      ? new BrokerBlockedError(`task ${id} (${name}): the broker blocked the connection (${blocked.reason}); not confirmed within ${this.confirmTimeoutMs} ms`)
      : new BrokerUnavailableError(`task ${id} (${name}): the broker did not confirm it within ${this.confirmTimeoutMs} ms`);
  }

  /** Writes the message on the channel (throws at once when there is none, or it is blocked); `confirmed` settles with the broker's answer. */
  /** `options` with the sender's write location (ProducerOptions.writeLocation), unless it names one. */
  private async withWriteLocation<O extends SendOptions>(options: O): Promise<O> {
    if (options.writeLocation !== undefined || !this.o.writeLocation) return options;
    const writeLocation = await this.o.writeLocation();
    return writeLocation === undefined ? options : { ...options, writeLocation };
  }

  private publish(name: string, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>, options: SendOptions): { id: string; confirmed: Promise<void> } {
    const { writeLocation, link, linkError, chain, group, ...build } = options;
    const message = buildTaskMessage(name, args, kwargs, { ...build, replyTo: this.replyQueue });
    if (writeLocation !== undefined) message.headers[WRITE_LOCATION_HEADER] = writeLocation;
    // Celery's embed: a chain travels last step first (the worker pops the next one).
    if (link?.length) message.embed.callbacks = [...link];
    if (linkError?.length) message.embed.errbacks = [...linkError];
    if (chain?.length) message.embed.chain = [...chain].reverse();
    if (group) {
      message.headers.group = group.id;
      message.headers.group_index = group.index;
      message.embed.chord = group.chord;
    }
    const id = message.headers.id;
    const queue = options.queue ?? this.o.routes?.[name] ?? TASK_QUEUE;
    // The send's span (Celery's instrumentation names it so), its context in the headers for the task's run.
    const span = tracer().startSpan(`apply_async/${name}`, {
      kind: SpanKind.PRODUCER,
      attributes: { "celery.action": "apply_async", "celery.task_name": name, "messaging.system": "rabbitmq", "messaging.operation.type": "send", "messaging.destination.name": queue, "messaging.message.id": id },
    });
    injectTraceContext(message.headers, trace.setSpan(context.active(), span));
    const { body, options: publishOptions } = encodeTaskMessage(message);
    const channel = this.channel;
    const refuse = (error: Error): never => {
      span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      span.end();
      throw error;
    };
    if (!channel) refuse(new BrokerUnavailableError(`task ${id} (${name}) not sent: RabbitMQ is not reachable now (reconnecting)`));
    const blocked = this.blocked;
    if (blocked) refuse(new BrokerBlockedError(`task ${id} (${name}) not sent: the broker has blocked publishing since ${new Date(blocked.since).toISOString()} (${blocked.reason})`));
    const confirmed = new Promise<void>((resolve, reject) => {
      let failed = false;
      this.returned.set(id, (error) => {
        failed = true;
        reject(error);
      });
      try {
        channel!.publish("", queue, body, { ...publishOptions, headers: typedTable(publishOptions.headers as Record<string, unknown>), mandatory: true }, (error) => {
          this.returned.delete(id);
          if (failed) return;
          if (error) reject(new BrokerUnavailableError(`task ${id}: the broker did not confirm it: ${error}`, { cause: error }));
          else resolve();
        });
      } catch (error) {
        this.returned.delete(id);
        reject(new BrokerUnavailableError(`task ${id} not sent: ${(error as Error).message}`, { cause: error }));
      }
    });
    confirmed.then(
      () => span.end(),
      (error: Error) => {
        span.recordException(error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
        span.end();
      },
    ); // also: awaited by the caller, or by nobody once the wait was given up
    return { id, confirmed };
  }

  /**
   * Celery's `chord(header)(body)`: the header's tasks run in parallel, then `body` runs once with
   * their results, in header order, as its first argument. Sent as Celery sends it with a database
   * result backend: `celery.chord_unlock` to the body's queue (it checks the result store every second,
   * so the worker there needs one: WorkerOptions.results, or a Python worker with
   * `result_backend = "db+postgresql://…"`), then each header task carrying the group and the body.
   * Every task is confirmed by the broker; a failure midway throws, and what was sent still runs (the
   * unlock then waits for a header task that never comes: send the chord again under new ids).
   */
  async chord(header: readonly Signature[], body: Signature, options: { readonly groupId?: string } = {}): Promise<SentChord> {
    const str = optionString;
    const groupId = options.groupId ?? randomUUID();
    const bodyId = str(body.options?.task_id) ?? randomUUID();
    const frozen: Signature = { ...body, options: { ...body.options, task_id: bodyId } };
    const queueOf = (sig: Signature) => str(sig.options?.queue) ?? str(sig.options?.routing_key);
    if (header.length === 0) {
      // Nothing to wait for: the body runs at once with an empty list (as Celery's body.delay([])).
      await this.send(body.task, argsAfter(body, [[]]), body.kwargs ?? {}, { id: bodyId, ...(queueOf(body) ? { queue: queueOf(body)! } : {}) });
      return { groupId, bodyId, headerIds: [] };
    }
    const headerIds = header.map((sig) => str(sig.options?.task_id) ?? randomUUID());
    await this.send(CHORD_UNLOCK, [groupId, frozen], { interval: null, max_retries: null, result: headerIds.map((id) => [[id, null], null]) }, { countdown: 1, queue: queueOf(body) ?? this.o.routes?.[body.task] ?? TASK_QUEUE });
    for (const [index, sig] of header.entries()) {
      await this.send(sig.task, [...(sig.args ?? [])], sig.kwargs ?? {}, {
        id: headerIds[index]!,
        ...(queueOf(sig) ? { queue: queueOf(sig)! } : {}),
        ...(typeof sig.options?.priority === "number" ? { priority: sig.options.priority } : {}),
        group: { id: groupId, index, chord: frozen },
      });
    }
    return { groupId, bodyId, headerIds };
  }

  /**
   * For work already committed (an outbox row written): sends now, or, when the broker cannot take it
   * (away, blocking the connection, or not confirming within `confirmTimeoutMs`), keeps it and sends it
   * (same id) as soon as the connection is back or unblocked. Resolves `deferred: true` then, within
   * the bound. Needs `options.id` so a re-send is recognisable; a send the broker refused (no queue) still throws.
   */
  async sendOrDefer(name: string, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>, options: SendOptions & { id: string }): Promise<{ id: string; deferred: boolean }> {
    options = await this.withWriteLocation(options);
    const d: Deferred = { name, args, kwargs, options };
    let confirmed: Promise<void>;
    try {
      confirmed = this.publish(name, args, kwargs, options).confirmed;
    } catch (error) {
      if (!(error instanceof BrokerUnavailableError)) throw error;
      this.keep(options.id, d, error.message);
      return { id: options.id, deferred: true };
    }
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      confirmed.then(
        () => "confirmed" as const,
        (error: Error) => error,
      ),
      new Promise<"overdue">((resolve) => (timer = setTimeout(() => resolve("overdue"), this.confirmTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (outcome === "confirmed") return { id: options.id, deferred: false };
    if (outcome === "overdue") {
      // Still on its way (a blocked connection delivers it once the alarm clears): done when confirmed,
      // sent again if the channel dies first.
      this.overdue.set(options.id, d);
      confirmed.then(
        () => this.overdue.delete(options.id),
        (error: Error) => this.overdue.delete(options.id) && this.keep(options.id, d, error.message),
      );
      this.o.log?.(`task ${options.id} (${name}) not confirmed within ${this.confirmTimeoutMs} ms${this.blocked ? ` (the broker blocks the connection: ${this.blocked.reason})` : ""}; it stays on its way`);
      return { id: options.id, deferred: true };
    }
    if (!(outcome instanceof BrokerUnavailableError)) throw outcome;
    this.keep(options.id, d, outcome.message);
    return { id: options.id, deferred: true };
  }

  /** Keeps a send for the broker's return (the oldest forgotten past DEFERRED_KEPT: its outbox row remains). */
  private keep(id: string, d: Deferred, why?: string): boolean {
    this.deferred.set(id, d);
    if (why) this.o.log?.(`task ${id} (${d.name}) kept for the broker: ${why}`);
    if (this.deferred.size > DEFERRED_KEPT) {
      const oldest = this.deferred.keys().next().value as string;
      this.deferred.delete(oldest);
      this.o.log?.(`deferred task ${oldest} forgotten (over ${DEFERRED_KEPT} kept): its outbox row is re-sent by the stale-task check`);
    }
    if (this.connected && !this.blocked) void this.flushDeferred();
    return true;
  }

  /** Re-sends what was deferred, oldest first; stops at the first failure (the next reconnect resumes). */
  private flushDeferred(): Promise<void> {
    this.flushing ??= (async () => {
      try {
        for (const [id, d] of this.deferred) {
          await this.send(d.name, d.args, d.kwargs, d.options);
          this.deferred.delete(id);
          this.o.log?.(`deferred task ${id} (${d.name}) sent`);
        }
      } catch (error) {
        this.o.log?.(`deferred tasks wait for the next reconnect or unblock: ${(error as Error).message}`);
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  /** Waits for a task's final result (SUCCESS or FAILURE; RETRY only updates the state). */
  async result(id: string, timeoutMs = 30_000): Promise<unknown> {
    const ready = this.early.get(id);
    if (ready) {
      this.early.delete(id);
      return this.settle(id, ready);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`task ${id}: no result within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  async close(): Promise<void> {
    for (const [, w] of this.waiting) w.reject(new Error("producer closed"));
    if (this.deferred.size > 0) this.o.log?.(`closing with ${this.deferred.size} deferred task(s) unsent: their outbox rows stay pending for the stale-task check`);
    this.channel = undefined;
    await this.link?.close();
  }

  private settle(id: string, reply: { status: string; result: unknown; traceback: string | null }): unknown {
    if (reply.status === "SUCCESS") return reply.result;
    const r = (reply.result ?? {}) as { exc_type?: string; exc_message?: unknown };
    const message = Array.isArray(r.exc_message) ? r.exc_message.join(", ") : String(r.exc_message ?? reply.status);
    throw new TaskFailedError(id, r.exc_type ?? reply.status, message, reply.traceback);
  }

  private onReply(msg: ConsumeMessage): void {
    let reply: { task_id?: string; status: string; result: unknown; traceback: string | null };
    try {
      reply = JSON.parse(msg.content.toString("utf8"));
    } catch {
      return;
    }
    const id = (msg.properties.correlationId as string | undefined) ?? reply.task_id;
    if (!id || !["SUCCESS", "FAILURE", "REVOKED"].includes(reply.status)) return;
    const waiter = this.waiting.get(id);
    if (!waiter) {
      this.early.set(id, reply);
      // Results nobody asked for yet (an order's e-mail: the service never waits for it) must not
      // accumulate for the life of the process: the oldest are forgotten past EARLY_RESULTS_KEPT.
      if (this.early.size > EARLY_RESULTS_KEPT) this.early.delete(this.early.keys().next().value as string);
      return;
    }
    this.waiting.delete(id);
    try {
      waiter.resolve(this.settle(id, reply));
    } catch (error) {
      waiter.reject(error as Error);
    }
  }
}
