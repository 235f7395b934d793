/**
 * A Celery-compatible worker in TypeScript: consumes protocol-v2 tasks from RabbitMQ, runs up to
 * `concurrency` at once, and behaves as Celery's tooling expects, so Python services and Flower see it
 * like any Celery worker.
 *
 * - Nothing lost: a task is acknowledged only after it finished and its follow-up (result, retry,
 *   dead letter) is confirmed by the broker. A worker that dies mid-task leaves it to be redelivered.
 * - Two connections, as RabbitMQ advises: one consumes and acknowledges, the other publishes (results,
 *   retries, dead letters, events, control replies). Under a resource alarm the broker blocks only
 *   connections that publish, so the consuming one keeps acknowledging: tasks that publish nothing
 *   (ignore_result, no task events: an order's e-mail) go on running and drain the queue, which is what
 *   clears a memory alarm; events are dropped while the publishing connection is blocked, and a
 *   task's retry or dead letter waits for the unblock before its delivery is acknowledged.
 * - Recovery: any connection or channel loss (broker restart, network cut, a channel error) drops the
 *   connection and reconnects with back-off (BrokerLink); losing the publishing connection drops the
 *   consuming one too (a delivery whose follow-up cannot be published must go back to the broker); the queues, the pidbox and the consumers are
 *   declared again and consumption resumes. Work that was in flight is not acknowledged on the new
 *   channel (its delivery died with the old one): the broker redelivers it. `consuming` is false
 *   meanwhile, and so is the liveness signal (`onHeartbeat`).
 * - Retries: a failing task is re-sent with `retries + 1` and an eta (exponential back-off), up to
 *   `maxRetries` (3: four attempts in all); then it goes to the dead-letter queue with its reason.
 * - Poison: malformed messages and unknown task names go to the dead-letter queue with the reason; the
 *   worker keeps running. A task redelivered more than `maxRedeliveries` times (its worker was lost
 *   each time) is dead-lettered instead of killing worker after worker.
 * - eta/countdown: held unacknowledged until due, with the prefetch raised by one each (as Celery does).
 *   An eta further than `holdHorizonMs` away is re-published (same message, same id) every horizon, so
 *   no delivery stays unacknowledged past RabbitMQ's consumer_timeout and no timer overflows; `expires`
 *   and revocation are checked again when the eta comes.
 * - Events on `celeryev` (events.ts) and answers on the pidbox (pidbox.ts, remote-control.ts); every header written is
 *   typed for py-amqp (amqp-table.ts).
 * - Graceful stop: stops taking tasks, lets running ones finish for `shutdownTimeoutMs`, then returns
 *   the rest to the queue, and says worker-offline.
 */
import type { ServerTls } from "../tls";
import { hostname as osHostname, loadavg } from "node:os";
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib";
import { DEAD_LETTER_EXCHANGE, DEAD_LETTER_ROUTING_KEY, EMAIL_QUEUE, TASK_QUEUE, TASK_QUEUE_ARGUMENTS } from "./topology";
import { typedTable } from "./amqp-table";
import { BrokerLink, BrokerUnavailableError } from "./broker-link";
import { UnavailableError } from "../errors";
import { EventDispatcher, WORKER_SOFTWARE } from "./events";
import { startPidbox } from "./pidbox";
import { CHORD_UNLOCK, chordUnlock, onFailure, onSuccess, unsupportedCanvas } from "./canvas";
import type { TaskResults } from "./results";
import { exceptionInfo, isoWithOffset, MalformedTaskError, parseTaskMessage, parseTime, pyRepr, resultBody, TaskMessage, WRITE_LOCATION_HEADER } from "./protocol";
import { parseRateLimit } from "./rate-limit";
import type { ControlledTask, ControlTarget } from "./remote-control";
import { RevokedIds } from "./revoked";
import { context, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import type { Logger } from "pino";
import { extractTraceContext, injectTraceContext, traceFields, tracer } from "../observability/trace-context";

export interface TaskContext {
  readonly id: string;
  readonly name: string;
  /** 0 on the first attempt. */
  readonly retries: number;
  readonly hostname: string;
  /**
   * An earlier attempt's side effect went out but its completion could not be recorded (it threw
   * CompletionNotRecordedError): this attempt must only record it, not repeat the effect.
   */
  readonly effectDone: boolean;
}

/**
 * Thrown by a task whose side effect went out (an e-mail sent) but whose completion could not be
 * recorded (the database refused a connection): the worker retries it as usual, with a header saying
 * so in the message itself (RabbitMQ keeps it when the database cannot), and the retry sees
 * `ctx.effectDone` and only records the completion.
 */
export class CompletionNotRecordedError extends UnavailableError {}

export type TaskHandler = (args: unknown[], kwargs: Record<string, unknown>, ctx: TaskContext) => unknown | Promise<unknown>;

export interface WorkerOptions {
  readonly url: string;
  /** AMQPS: verify the broker against this CA (pass the contract's `rabbitmq.tls`). */
  readonly tls?: ServerTls;
  /** Node name shown in Flower and answered to on the pidbox. @default `ts-worker-<pid>@<host>` */
  readonly hostname?: string;
  /** @default "celery" */
  readonly queue?: string;
  /**
   * Arguments to declare a consumed queue with, by name (e.g. `{ "x-max-priority": 10 }` for a priority
   * queue of another name). @default the task queues' (TASK_QUEUE_ARGUMENTS) for celery and shopfds.email, none otherwise
   */
  readonly queueArguments?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Tasks run at once. @default 4 (FR-015) */
  readonly concurrency?: number;
  /** Tasks taken from the broker ahead of a free slot, per slot (Celery's worker_prefetch_multiplier). @default 4 */
  readonly prefetchMultiplier?: number;
  /** Retries after the first attempt. @default 3 (FR-021) */
  readonly maxRetries?: number;
  /** Delay before retry `n` (1, 2, 3…), in ms. @default 1000 × 2^(n-1) */
  readonly retryDelayMs?: (retry: number) => number;
  /** Redeliveries tolerated (a worker lost mid-task) before the task is dead-lettered. @default 3 */
  readonly maxRedeliveries?: number;
  /** @default 2 */
  readonly heartbeatSeconds?: number;
  /**
   * Send task events (task-received, -started, -succeeded …) from the start, as Celery's `-E`.
   * @default false: as a Celery worker, only worker events (online, heartbeats, offline) until a
   * monitor asks for task events with the `enable_events` control command (Flower does every 5 s);
   * `disable_events` stops them again. Without a monitor they are routed nowhere, three messages per
   * task the broker takes for nothing.
   */
  readonly taskEvents?: boolean;
  /** @default 30000 */
  readonly shutdownTimeoutMs?: number;
  /** An eta further away than this is re-published each horizon instead of held (RabbitMQ's consumer_timeout is 1 h). @default 20 minutes */
  readonly holdHorizonMs?: number;
  /** Longest wait between reconnect attempts. @default 2000 */
  readonly maxReconnectDelayMs?: number;
  /** Lines about the worker itself (connections, remote control). @default no output */
  readonly log?: (line: string) => void;
  /**
   * One ECS line per task outcome (succeeded, retried with its reason, failed, dead-lettered, revoked)
   * with the task, its id, the duration and the trace id of its run span (`createLogger` makes one).
   * With it, retries and dead letters are written here rather than to `log`. @default none
   */
  readonly logger?: Logger;
  /** Called at each heartbeat while the worker consumes (not while reconnecting): a liveness signal. */
  readonly onHeartbeat?: () => void;
  /** Called when a task run ends, for metrics (ServiceMetrics.observeJob fits). */
  readonly onTaskDone?: (task: string, outcome: TaskOutcome, seconds?: number) => void;
  /**
   * Runs each task in a read-your-writes scope after the write location its sender carried
   * (`x-shopfds-write-location`): `(after, run) => db.withSession(run, { after })`. @default none
   */
  readonly readAfter?: <T>(writeLocation: string | undefined, run: () => Promise<T>) => Promise<T>;
  /** The queue of each task name a chain step or callback sends without naming one (Celery's task_routes); others go to "celery". */
  readonly routes?: Readonly<Record<string, string>>;
  /**
   * The result store chords count in (`new PostgresTaskResults(db)`: Celery's database backend, shared
   * with Python services). With it the worker records the outcome of every task of a group (a chord's
   * header) and runs `celery.chord_unlock`; without it a chord is refused with a reason. @default none
   */
  readonly results?: TaskResults;
}

export type TaskOutcome = "succeeded" | "failed" | "retried" | "dead_lettered" | "revoked";

const REDELIVERIES = "x-shopfds-redeliveries";
/** On a retry's message: the side effect went out on an earlier attempt (CompletionNotRecordedError). */
const EFFECT_DONE = "x-shopfds-effect-done";

/** A delivery and the channel it came on: it can be acknowledged only there. */
interface Delivery {
  readonly message: ConsumeMessage;
  readonly channel: ConfirmChannel;
}

export interface TaskRequest {
  readonly id: string;
  readonly name: string;
  readonly task: TaskMessage;
  readonly delivery: Delivery;
  started?: number;
}

class TimeLimitExceeded extends Error {
  constructor(seconds: number, soft: boolean) {
    super(`${soft ? "soft " : ""}time limit (${seconds}s) exceeded`);
    this.name = soft ? "SoftTimeLimitExceeded" : "TimeLimitExceeded";
  }
}

export class Worker implements ControlTarget {
  readonly hostname: string;
  private readonly givenQueueArguments: WorkerOptions["queueArguments"];
  private readonly o: Required<Omit<WorkerOptions, "hostname" | "tls" | "log" | "logger" | "onHeartbeat" | "onTaskDone" | "concurrency" | "taskEvents" | "readAfter" | "queueArguments" | "results">> & {
    tls?: ServerTls;
    results?: TaskResults;
    logger?: Logger;
    readAfter?: WorkerOptions["readAfter"];
    log: (line: string) => void;
    onHeartbeat?: () => void;
    onTaskDone: (task: string, outcome: TaskOutcome, seconds?: number) => void;
  };
  private readonly handlers = new Map<string, TaskHandler>();
  /** Queues consumed (add_consumer/cancel_consumer change it; kept across reconnects). */
  private readonly consumed: string[];
  /** Task slots (pool_grow/shrink and autoscale change it). */
  private pool: number;
  private readonly running = new Map<string, TaskRequest>();
  /** Received and due, waiting for a free slot (Celery's "reserved"). */
  private readonly reserved: TaskRequest[] = [];
  private readonly held = new Map<string, TaskRequest & { timer: NodeJS.Timeout }>();
  private readonly revoked = new RevokedIds();
  private readonly totals: Record<string, number> = {};
  /** Per task: minimum ms between starts (rate_limit), and [hard, soft] seconds (time_limit). */
  private readonly rateLimits = new Map<string, { gapMs: number; next: number }>();
  private readonly timeLimits = new Map<string, [number | null, number | null]>();
  private processed = 0;
  private startedAt = 0;
  /** Celery events on celeryev, and the Lamport clock (events.ts). */
  private readonly events: EventDispatcher;
  private link?: BrokerLink;
  private channel?: ConfirmChannel;
  /** Task deliveries on the current channel not settled yet, by delivery tag (coalesced acks). */
  private readonly unsettled = new Set<number>();
  /** Acks waiting for the end of the event-loop turn, sent together by flushAcks. */
  private pendingAcks: Delivery[] = [];
  private ackTimer?: NodeJS.Immediate;
  /** The publishing connection and its channel (results, retries, dead letters, control replies). */
  private publishLink?: BrokerLink;
  private publishChannel?: ConfirmChannel;
  private readonly consumerTags = new Map<string, string>();
  private heartbeatTimer?: NodeJS.Timeout;
  private pumpTimer?: NodeJS.Timeout;
  private stopping?: Promise<void>;
  private idle?: () => void;

  constructor(options: WorkerOptions) {
    this.hostname = options.hostname ?? `ts-worker-${process.pid}@${osHostname()}`;
    this.pool = options.concurrency ?? 4;
    this.givenQueueArguments = options.queueArguments;
    this.o = {
      url: options.url,
      tls: options.tls,
      queue: options.queue ?? TASK_QUEUE,
      prefetchMultiplier: options.prefetchMultiplier ?? 4,
      maxRetries: options.maxRetries ?? 3,
      retryDelayMs: options.retryDelayMs ?? ((n) => 1000 * 2 ** (n - 1)),
      maxRedeliveries: options.maxRedeliveries ?? 3,
      heartbeatSeconds: options.heartbeatSeconds ?? 2,
      shutdownTimeoutMs: options.shutdownTimeoutMs ?? 30_000,
      holdHorizonMs: options.holdHorizonMs ?? 20 * 60_000,
      maxReconnectDelayMs: options.maxReconnectDelayMs ?? 2000,
      log: options.log ?? (options.logger ? (line) => options.logger!.info(line) : () => undefined),
      ...(options.logger ? { logger: options.logger } : {}),
      onHeartbeat: options.onHeartbeat,
      onTaskDone: options.onTaskDone ?? (() => undefined),
      ...(options.readAfter ? { readAfter: options.readAfter } : {}),
      routes: options.routes ?? {},
      ...(options.results ? { results: options.results } : {}),
    };
    // Celery's built-in, run by unlockChord (listed among the registered tasks, as a Celery worker lists it).
    if (options.results) this.handlers.set(CHORD_UNLOCK, () => Promise.reject(new Error(`${CHORD_UNLOCK} runs inside the worker`)));
    if (!Number.isInteger(this.pool) || this.pool < 1) throw new RangeError(`concurrency: must be a positive integer (got ${options.concurrency})`);
    if (!Number.isInteger(this.o.prefetchMultiplier) || this.o.prefetchMultiplier < 1) throw new RangeError(`prefetchMultiplier: must be a positive integer (got ${options.prefetchMultiplier})`);
    this.consumed = [this.o.queue];
    this.events = new EventDispatcher(this.hostname, this.o.log);
    this.events.taskEvents = options.taskEvents ?? false;
  }

  /** The Lamport clock of this worker's events (remote control reads and merges it). */
  get clock(): number {
    return this.events.clock;
  }

  /** Task slots. */
  get concurrency(): number {
    return this.pool;
  }

  /** The queues consumed now. */
  get queues(): readonly string[] {
    return [...this.consumed];
  }

  /** Whether task events are sent (Celery's -E, or enable_events). */
  get taskEvents(): boolean {
    return this.events.taskEvents;
  }

  // ControlTarget (remote-control.ts): what the inspect and control commands ask of the worker.

  mergeClock(remote: number | undefined): void {
    this.events.clock = remote === undefined ? this.events.clock + 1 : Math.max(this.events.clock, remote) + 1;
  }

  registered(): string[] {
    return [...this.handlers.keys()].sort();
  }

  hasTask(name: string): boolean {
    return this.handlers.has(name);
  }

  tasksIn(state: "active" | "reserved" | "scheduled"): ControlledTask[] {
    const list = state === "active" ? [...this.running.values()] : state === "reserved" ? this.reserved : [...this.held.values()];
    return list.map((r) => ({
      id: r.id,
      name: r.name,
      args: r.task.args,
      kwargs: r.task.kwargs,
      ...(r.started ? { startedMs: r.started } : {}),
      exchange: r.delivery.message.fields.exchange,
      routingKey: r.delivery.message.fields.routingKey,
      redelivered: r.delivery.message.fields.redelivered,
      ...(state === "scheduled" ? { eta: r.task.headers.eta } : {}),
    }));
  }

  isRunning(id: string): boolean {
    return this.running.has(id);
  }

  revokedForMingle(): unknown {
    return this.revoked.celeryData();
  }

  revokedList(): string[] {
    return this.revoked.list();
  }

  setTimeLimits(task: string, hard: number | null, soft: number | null): void {
    this.timeLimits.set(task, [hard, soft]);
  }

  resize(concurrency: number): void {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency: must be a positive integer (got ${concurrency})`);
    this.pool = concurrency;
    this.updatePrefetch();
    this.pump();
  }

  setTaskEvents(on: boolean): boolean {
    if (this.events.taskEvents === on) return false;
    this.events.taskEvents = on;
    this.o.log(`task events ${on ? "enabled" : "disabled"} by remote control`);
    return true;
  }

  heartbeat(): void {
    this.emit("worker-heartbeat", { freq: 5, ...WORKER_SOFTWARE });
  }

  statistics(): { totals: Record<string, number>; processed: number; startedAt: number; active: number } {
    return { totals: { ...this.totals }, processed: this.processed, startedAt: this.startedAt, active: this.running.size };
  }

  shutdown(): void {
    setImmediate(() => void this.stop());
  }

  /** Registers a task by its Celery name (e.g. `shopfds.send_order_email`). */
  register(name: string, handler: TaskHandler): this {
    if (this.handlers.has(name)) throw new Error(`task ${name} is already registered`);
    this.handlers.set(name, handler);
    return this;
  }

  get activeCount(): number {
    return this.running.size;
  }

  /** Connected, set up and consuming its queues now (false while reconnecting or stopping). */
  get consuming(): boolean {
    return this.channel !== undefined && this.publishChannel !== undefined && this.consumerTags.size > 0 && !this.stopping;
  }

  /** Why and since when the broker blocks the publishing connection (a resource alarm), or undefined. */
  get blocked(): { readonly reason: string; readonly since: number } | undefined {
    return this.publishLink?.blocked;
  }

  get brokerUrl(): string {
    return this.o.url;
  }

  get defaultQueue(): string {
    return this.o.queue;
  }

  get prefetchMultiplier(): number {
    return this.o.prefetchMultiplier;
  }

  async start(): Promise<void> {
    this.startedAt = Date.now();
    this.publishLink = await BrokerLink.open({
      url: this.o.url,
      tls: this.o.tls,
      name: `${this.hostname} (publish)`,
      log: this.o.log,
      maxReconnectDelayMs: this.o.maxReconnectDelayMs,
      setup: async (connection, watch) => {
        const channel = await connection.createConfirmChannel();
        const events = await connection.createConfirmChannel();
        watch(channel, "publish");
        watch(events, "events");
        await this.events.attach(events);
        this.publishChannel = channel;
      },
      onDown: () => {
        this.publishChannel = undefined;
        this.events.detach();
        this.link?.reset("the publishing connection was lost");
      },
      onBlocked: () => (this.events.paused = true),
      onUnblocked: () => (this.events.paused = false),
    });
    this.link = await BrokerLink.open({
      url: this.o.url,
      tls: this.o.tls,
      name: this.hostname,
      log: this.o.log,
      maxReconnectDelayMs: this.o.maxReconnectDelayMs,
      setup: (connection, watch) =>
        this.setup(connection, watch).catch((error: unknown) => {
          this.lost(); // a half-made setup: recovery closes this connection and tries again
          throw error;
        }),
      onDown: () => this.lost(),
    });
    this.heartbeatTimer = setInterval(() => {
      if (!this.consuming) return;
      this.emit("worker-heartbeat", this.workerFields());
      this.o.onHeartbeat?.();
    }, this.o.heartbeatSeconds * 1000);
    this.heartbeatTimer.unref();
    this.o.log(`${this.hostname} consuming ${this.consumed.join(", ")} (concurrency ${this.pool}; tasks: ${[...this.handlers.keys()].join(", ")})`);
  }

  /** Channels, declarations and consumers on a new connection (also after every reconnect). */
  private async setup(connection: ChannelModel, watch: (channel: ConfirmChannel, what: string) => void): Promise<void> {
    const channel = await connection.createConfirmChannel();
    watch(channel, "task");
    // The same declarations Celery makes, so neither side trips over the other's (406 otherwise).
    for (const q of this.consumed) await this.declare(channel, q);
    await startPidbox(channel, { target: this, replyChannel: () => this.openPublishChannel(3000), log: (line) => this.o.log(line) });
    // Global QoS, as Celery sets it, so the prefetch can grow while tasks wait for their eta.
    await channel.prefetch(this.prefetch(), true);
    // Deliveries can arrive as soon as a consumer exists: the channel must be the current one by then.
    this.channel = channel;
    this.unsettled.clear();
    this.pendingAcks = [];
    this.consumerTags.clear();
    for (const q of this.consumed) await this.consume(channel, q);
    this.emit("worker-online", this.workerFields());
  }

  /** Declares a consumed queue; the broker's 406 (it exists with other arguments) says what to do about it. */
  private async declare(channel: ConfirmChannel, queue: string): Promise<void> {
    const args = this.queueArguments(queue);
    await channel.assertQueue(queue, { durable: true, arguments: args }).catch((e: Error & { code?: number }) => {
      if (e.code !== 406 && !/PRECONDITION_FAILED/.test(e.message)) throw e;
      throw new Error(
        `queue ${queue} exists with other arguments than this worker declares (${JSON.stringify(args)}): ${e.message}. RabbitMQ cannot change them in place; with its consumers stopped, migrate it: npx shopfds-runtime queues migrate (docs/runtime.md, "Upgrading a broker")`,
        { cause: e },
      );
    });
  }

  /** The connection is gone: what was held or reserved died with its channel (the broker requeues it). */
  private lost(): void {
    this.channel = undefined;
    this.unsettled.clear();
    this.pendingAcks = [];
    this.consumerTags.clear();
    for (const h of this.held.values()) clearTimeout(h.timer);
    this.held.clear();
    this.reserved.length = 0;
  }

  queueArguments(queue: string): Record<string, unknown> {
    const given = this.givenQueueArguments?.[queue];
    if (given) return { ...given };
    return queue === TASK_QUEUE || queue === EMAIL_QUEUE ? { ...TASK_QUEUE_ARGUMENTS } : {};
  }

  prefetch(): number {
    return this.pool * this.o.prefetchMultiplier + this.held.size;
  }

  /** Applies a changed prefetch (held tasks, pool_grow/shrink) to the live channel. */
  private updatePrefetch(): void {
    void this.channel?.prefetch(this.prefetch(), true).catch(() => undefined);
  }

  /** Stops taking tasks, waits for running ones (up to shutdownTimeoutMs), requeues the rest. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.heartbeatTimer);
      clearTimeout(this.pumpTimer);
      const channel = this.channel;
      if (channel) for (const tag of this.consumerTags.values()) await channel.cancel(tag).catch(() => undefined);
      for (const h of this.held.values()) {
        clearTimeout(h.timer);
        this.settle(h.delivery, "requeue");
      }
      this.held.clear();
      for (const r of this.reserved.splice(0)) this.settle(r.delivery, "requeue");
      if (this.running.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([new Promise<void>((r) => (this.idle = r)), new Promise((r) => (timer = setTimeout(r, this.o.shutdownTimeoutMs)))]);
        clearTimeout(timer);
      }
      for (const r of this.running.values()) this.settle(r.delivery, "requeue");
      this.flushAcks();
      this.emit("worker-offline", this.workerFields());
      await this.events.flush();
      await this.link?.close();
      await this.publishLink?.close();
    })();
    return this.stopping;
  }

  private workerFields() {
    return { freq: this.o.heartbeatSeconds, active: this.running.size, processed: this.processed, loadavg: loadavg().map((n) => Math.round(n * 100) / 100), ...WORKER_SOFTWARE };
  }

  /** Publishes one Celery event (events.ts). */
  private emit(type: string, fields: Record<string, unknown> | (() => Record<string, unknown>)): void {
    this.events.emit(type, fields);
  }

  /**
   * Acknowledges (or requeues) a delivery on the channel it came on; on a dead channel the broker has
   * already requeued it. Acks are sent at the end of the event-loop turn, together (flushAcks).
   */
  private settle(d: Delivery, how: "ack" | "requeue"): void {
    if (d.channel !== this.channel) {
      this.o.log(`delivery ${String((d.message.properties.headers ?? {}).id ?? "?")} not ${how === "ack" ? "acknowledged" : "requeued"}: its channel is gone, the broker redelivers it`);
      return;
    }
    if (how === "ack") {
      this.pendingAcks.push(d);
      this.ackTimer ??= setImmediate(() => this.flushAcks());
      return;
    }
    this.flushAcks();
    this.unsettled.delete(d.message.fields.deliveryTag);
    try {
      d.channel.nack(d.message, false, true);
    } catch (e) {
      this.o.log(`could not requeue a delivery: ${(e as Error).message}`);
    }
  }

  /**
   * Sends the acks settled during this turn. Those below the lowest delivery still open (running,
   * reserved, held for its eta) go as one `basic.ack` with `multiple` (it acknowledges every delivery up
   * to its tag, and all of those are done); the others one by one. A no-op task costs the broker one ack
   * frame per turn instead of one per task; a held or running task is never acknowledged early.
   */
  private flushAcks(): void {
    if (this.ackTimer) clearImmediate(this.ackTimer);
    this.ackTimer = undefined;
    const channel = this.channel;
    const acks = this.pendingAcks.filter((d) => d.channel === channel);
    this.pendingAcks = [];
    if (!channel || acks.length === 0) return;
    const tag = (d: Delivery) => d.message.fields.deliveryTag;
    const done = new Set(acks.map(tag));
    let lowestOpen = Infinity;
    for (const t of this.unsettled) if (!done.has(t) && t < lowestOpen) lowestOpen = t;
    acks.sort((a, b) => tag(a) - tag(b));
    const below = acks.filter((d) => tag(d) < lowestOpen);
    try {
      if (below.length > 0) channel.ack(below[below.length - 1]!.message, below.length > 1);
      for (const d of acks.slice(below.length)) channel.ack(d.message);
    } catch (e) {
      this.o.log(`could not acknowledge ${acks.length} deliveries: ${(e as Error).message}`);
    }
    for (const t of done) this.unsettled.delete(t);
  }

  /** The consumer callback: never throws into amqplib (a throw there closes the channel). */
  private receive(message: ConsumeMessage, channel: ConfirmChannel): void {
    if (channel === this.channel) this.unsettled.add(message.fields.deliveryTag);
    this.onDelivery({ message, channel }).catch((e: Error) => this.o.log(`delivery not handled: ${e.message}; the broker redelivers it`));
  }

  private async onDelivery(d: Delivery): Promise<void> {
    let task: TaskMessage;
    try {
      task = parseTaskMessage(d.message);
    } catch (error) {
      const reason = error instanceof MalformedTaskError ? error.reason : String(error);
      await this.deadLetter(d, `malformed message: ${reason}`);
      return;
    }
    const h = task.headers;
    if (!this.handlers.has(h.task)) {
      this.emit("task-rejected", { uuid: h.id, requeue: false });
      await this.reply(task, "FAILURE", { exc_type: "NotRegistered", exc_message: [h.task], exc_module: "celery.exceptions" });
      await this.deadLetter(d, `unknown task ${h.task}: this worker runs ${[...this.handlers.keys()].join(", ") || "nothing"}`);
      return;
    }
    const canvas = unsupportedCanvas(task.embed, this.o.results !== undefined);
    if (canvas) {
      this.emit("task-rejected", { uuid: h.id, requeue: false });
      await this.reply(task, "FAILURE", { exc_type: "NotImplementedError", exc_message: [canvas], exc_module: "builtins" });
      await this.deadLetter(d, `unsupported canvas: ${canvas}`);
      return;
    }
    if (d.message.fields.redelivered) {
      // The worker that had it was lost. Count it in the message itself (a re-publish), so the count
      // survives this worker dying too; past the limit, it is a poison message.
      const seen = Number((d.message.properties.headers ?? {})[REDELIVERIES] ?? 0) + 1;
      if (seen > this.o.maxRedeliveries) {
        await this.deadLetter(d, `redelivered ${seen} times: the worker running it was lost each time`);
        return;
      }
      await this.republish(d, { [REDELIVERIES]: seen });
      this.settle(d, "ack");
      return;
    }
    const request: TaskRequest = { id: h.id, name: h.task, task, delivery: d };
    if (await this.discardIfDead(request)) return;
    this.emit("task-received", { uuid: h.id, name: h.task, args: h.argsrepr, kwargs: h.kwargsrepr, root_id: h.root_id, parent_id: h.parent_id, retries: h.retries, eta: h.eta, expires: h.expires });
    this.schedule(request);
  }

  /** A revoked or expired task is acknowledged and reported, not run (as Celery does). */
  private async discardIfDead(r: TaskRequest): Promise<boolean> {
    const expires = parseTime(r.task.headers.expires);
    const expired = expires !== undefined && expires.getTime() < Date.now();
    if (!expired && !this.revoked.has(r.id)) return false;
    this.emit("task-revoked", { uuid: r.id, terminated: false, signum: null, expired });
    this.done(r.name, r.id, "revoked", { headers: r.delivery.message.properties.headers, message: `Task ${r.name}[${r.id}] ${expired ? "expired" : "revoked"}: not run` });
    await this.reply(r.task, "REVOKED", { exc_type: "TaskRevokedError", exc_message: [expired ? "expired" : "revoked"], exc_module: "celery.exceptions" });
    this.settle(r.delivery, "ack");
    return true;
  }

  /** Runs it now, or holds it until its eta (re-publishing it each horizon when far away). */
  private schedule(r: TaskRequest): void {
    const eta = parseTime(r.task.headers.eta);
    const wait = eta ? eta.getTime() - Date.now() : 0;
    if (wait <= 0) {
      this.reserved.push(r);
      this.pump();
      return;
    }
    const far = wait > this.o.holdHorizonMs;
    const timer = setTimeout(() => void this.whenHeld(r, far), far ? this.o.holdHorizonMs : wait);
    this.held.set(r.id, { ...r, timer });
    this.updatePrefetch();
  }

  private async whenHeld(r: TaskRequest, far: boolean): Promise<void> {
    if (!this.held.delete(r.id)) return;
    this.updatePrefetch();
    try {
      if (far) {
        // Still far away: hand it back as a fresh message (same id) so no delivery outlives consumer_timeout.
        await this.republish(r.delivery, {});
        this.settle(r.delivery, "ack");
        return;
      }
      if (await this.discardIfDead(r)) return;
      this.reserved.push(r);
      this.pump();
    } catch (e) {
      this.o.log(`task ${r.id} (eta) not handled: ${(e as Error).message}; the broker redelivers it`);
    }
  }

  /** Starts reserved tasks while slots are free, honouring rate limits. */
  private pump(): void {
    clearTimeout(this.pumpTimer);
    let soonest = Infinity;
    for (let i = 0; i < this.reserved.length && this.running.size < this.pool; ) {
      const r = this.reserved[i]!;
      const limit = this.rateLimits.get(r.name);
      const now = Date.now();
      if (limit && limit.next > now) {
        soonest = Math.min(soonest, limit.next - now);
        i++;
        continue;
      }
      if (limit) limit.next = now + limit.gapMs;
      this.reserved.splice(i, 1);
      void this.run(r);
    }
    if (soonest !== Infinity && !this.stopping) this.pumpTimer = setTimeout(() => this.pump(), soonest);
  }

  /** Revokes ids: held or reserved ones are acknowledged and reported now; later arrivals are discarded. */
  revoke(ids: readonly string[]): void {
    for (const id of ids) this.revoked.add(id);
    for (const id of ids) {
      const held = this.held.get(id);
      if (held) {
        clearTimeout(held.timer);
        this.held.delete(id);
        this.updatePrefetch();
        void this.discardIfDead(held).catch(() => undefined);
      }
      const i = this.reserved.findIndex((r) => r.id === id);
      if (i >= 0) void this.discardIfDead(this.reserved.splice(i, 1)[0]!).catch(() => undefined);
    }
  }

  setRateLimit(task: string, rate: unknown): "disabled" | "set" {
    const gapMs = parseRateLimit(rate);
    if (gapMs === null) {
      this.rateLimits.delete(task);
      this.pump();
      return "disabled";
    }
    this.rateLimits.set(task, { gapMs, next: 0 });
    return "set";
  }

  private async run(r: TaskRequest): Promise<void> {
    const h = r.task.headers;
    const started = Date.now();
    r.started = started;
    this.running.set(h.id, r);
    this.processed++;
    this.totals[h.task] = (this.totals[h.task] ?? 0) + 1;
    this.emit("task-started", { uuid: h.id });
    // The run's span, a child of the sender's (the trace context its headers carry, from TypeScript or
    // from Python's Celery instrumentation); the task's queries, commands and sends are its children.
    const parent = extractTraceContext(r.delivery.message.properties.headers);
    const span = tracer().startSpan(
      `run/${h.task}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: { "celery.action": "run", "celery.task_name": h.task, "messaging.system": "rabbitmq", "messaging.operation.type": "process", "messaging.destination.name": r.delivery.message.fields.routingKey, "messaging.message.id": h.id, "celery.retries": h.retries, "celery.hostname": this.hostname },
      },
      parent,
    );
    const inSpan = trace.setSpan(parent, span);
    try {
      if (h.task === CHORD_UNLOCK && this.o.results) {
        await this.unlockChord(r, this.o.results, span, inSpan, started);
        return;
      }
      // A task of a group (a chord's header) records its outcome where celery.chord_unlock looks.
      const results = h.group || r.task.embed.chord ? this.o.results : undefined;
      let value: unknown;
      let failure: unknown;
      try {
        const effectDone = (r.delivery.message.properties.headers ?? {})[EFFECT_DONE] === true;
        const call = async () => (this.handlers.get(h.task) as TaskHandler)(r.task.args, r.task.kwargs, { id: h.id, name: h.task, retries: h.retries, hostname: this.hostname, effectDone });
        const after = h[WRITE_LOCATION_HEADER];
        const readAfter = this.o.readAfter;
        value = await context.with(inSpan, () => this.withTimeLimit(h.task, h.timelimit, readAfter ? () => readAfter(typeof after === "string" ? after : undefined, call) : call));
        // Not recorded: the attempt failed (and is retried), as in Celery when store_result fails.
        if (results) await results.record(h.id, { status: "SUCCESS", result: value ?? null });
      } catch (error) {
        failure = error ?? new Error("task failed");
      }
      if (failure === undefined) {
        span.setAttribute("celery.state", "SUCCESS");
        await this.reply(r.task, "SUCCESS", value ?? null);
        // The chain's next step and the link callbacks, confirmed before the task is acknowledged (a
        // crash in between runs the task again: at least once, as Celery); each carries this run's trace.
        for (const f of onSuccess(r.task, value ?? null, this.o.routes, TASK_QUEUE)) await this.publishConfirmed("", f.queue, f.body, this.traced(f.options, inSpan));
        const runtime = (Date.now() - started) / 1000;
        this.emit("task-succeeded", () => ({ uuid: h.id, result: pyRepr(value ?? null), runtime }));
        this.done(h.task, h.id, "succeeded", { seconds: runtime, span, message: `Task ${h.task}[${h.id}] succeeded in ${runtime}s` });
      } else {
        const error = failure instanceof Error ? failure : new Error(String(failure));
        const exception = `${error.name}(${pyRepr(error.message)})`;
        const effectDone = error instanceof CompletionNotRecordedError || (r.delivery.message.properties.headers ?? {})[EFFECT_DONE] === true;
        span.recordException(error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: `${error.name}: ${error.message}` });
        if (h.retries < this.o.maxRetries) {
          const retry = h.retries + 1;
          const delay = this.o.retryDelayMs(retry);
          const eta = new Date(Date.now() + delay);
          span.setAttribute("celery.state", "RETRY");
          const line = `task ${h.id} (${h.task}) attempt ${h.retries + 1} of ${this.o.maxRetries + 1} failed: ${error.name}: ${error.message}; retry ${retry} in ${delay} ms${effectDone ? " (its effect is done: the retry only records it)" : ""}`;
          if (!this.o.logger) this.o.log(line);
          await this.republish(r.delivery, { retries: retry, eta: isoWithOffset(eta), parent_id: h.id, ...(effectDone ? { [EFFECT_DONE]: true } : {}) });
          this.emit("task-retried", { uuid: h.id, exception, traceback: error.stack ?? null });
          this.done(h.task, h.id, "retried", { seconds: (Date.now() - started) / 1000, span, error, message: line });
          await this.reply(r.task, "RETRY", exceptionInfo(error), error.stack ?? null);
        } else {
          span.setAttribute("celery.state", "FAILURE");
          this.emit("task-failed", { uuid: h.id, exception, traceback: error.stack ?? null });
          this.done(h.task, h.id, "failed", { seconds: (Date.now() - started) / 1000, span, error, message: `Task ${h.task}[${h.id}] failed after ${h.retries + 1} attempts: ${error.name}: ${error.message}` });
          await this.reply(r.task, "FAILURE", exceptionInfo(error), error.stack ?? null);
          if (results) {
            await results
              .record(h.id, { status: "FAILURE", result: { exc_type: error.name, exc_message: [error.message], exc_module: "builtins" }, traceback: error.stack ?? null })
              .catch((e: Error) => this.o.log(`task ${h.id} (${h.task}) failed, and its failure could not be recorded for its chord: ${e.message}; the chord waits`));
          }
          for (const f of onFailure(r.task, this.o.routes, TASK_QUEUE)) await this.publishConfirmed("", f.queue, f.body, this.traced(f.options, inSpan));
          await this.deadLetter(r.delivery, `failed after ${h.retries + 1} attempts: ${error.name}: ${error.message}`);
          return;
        }
      }
      this.settle(r.delivery, "ack");
    } catch (error) {
      // The broker connection failed while finishing: leave the delivery unacknowledged; the broker
      // redelivers it when the channel closes.
      this.o.log(`task ${h.id} (${h.task}) could not be finished: ${(error as Error).message}`);
    } finally {
      span.end();
      this.running.delete(h.id);
      if (this.running.size === 0) this.idle?.();
      if (!this.stopping) this.pump();
    }
  }

  /**
   * `celery.chord_unlock`: while the header is not done, the same message comes back after its
   * interval (retries counted, as Celery's self.retry; no outcome line per check); then the body is
   * sent, confirmed before the ack, or the chord fails: the body recorded as failed with a ChordError,
   * its errbacks sent, and a failed outcome line saying which header task raised what.
   */
  private async unlockChord(r: TaskRequest, results: TaskResults, span: Span, inSpan: ReturnType<typeof context.active>, started: number): Promise<void> {
    const h = r.task.headers;
    // The store unreachable: look again after the interval (Celery's unlock_chord retries likewise).
    const next = await chordUnlock(r.task, results, this.o.routes, TASK_QUEUE).catch((e: Error) => {
      this.o.log(`chord ${String(r.task.args[0])}: the result store did not answer (${e.message}); checking again in 1 s`);
      return { kind: "wait", intervalSeconds: 1 } as const;
    });
    span.setAttribute("celery.chord.group_id", String(r.task.args[0]));
    if (next.kind === "wait") {
      span.setAttribute("celery.state", "RETRY");
      await this.republish(r.delivery, { retries: h.retries + 1, eta: isoWithOffset(new Date(Date.now() + next.intervalSeconds * 1000)) });
      this.settle(r.delivery, "ack");
      return;
    }
    const seconds = (Date.now() - started) / 1000;
    if (next.kind === "body") {
      span.setAttribute("celery.state", "SUCCESS");
      await this.publishConfirmed("", next.followUp.queue, next.followUp.body, this.traced(next.followUp.options, inSpan));
      this.emit("task-succeeded", () => ({ uuid: h.id, result: "None", runtime: seconds }));
      this.done(h.task, h.id, "succeeded", { seconds, span, message: `Chord ${String(r.task.args[0])} complete: its body ${next.followUp.task}[${next.bodyId}] sent` });
    } else {
      const error = Object.assign(new Error(next.reason), { name: "ChordError" });
      span.setAttribute("celery.state", "FAILURE");
      span.setStatus({ code: SpanStatusCode.ERROR, message: next.reason });
      if (next.bodyId) await results.record(next.bodyId, { status: "FAILURE", result: { exc_type: "ChordError", exc_message: [next.reason], exc_module: "celery.exceptions" } });
      for (const f of next.followUps) await this.publishConfirmed("", f.queue, f.body, this.traced(f.options, inSpan));
      this.emit("task-succeeded", () => ({ uuid: h.id, result: "None", runtime: seconds }));
      this.done(h.task, h.id, "failed", { seconds, span, error, message: `Chord ${String(r.task.args[0])} failed: ${next.reason}; its body is not run` });
    }
    this.settle(r.delivery, "ack");
  }

  /**
   * Time limits (the message's `timelimit` [hard, soft], else time_limit's): the task fails with
   * SoftTimeLimitExceeded or TimeLimitExceeded, whichever comes first. A JavaScript task cannot be
   * interrupted from outside, so unlike Celery's soft limit it cannot catch it and clean up: its promise
   * is abandoned (and its late result ignored).
   */
  private async withTimeLimit<T>(task: string, fromMessage: [number | null, number | null], fn: () => T | Promise<T>): Promise<T> {
    const set = this.timeLimits.get(task);
    const hard = fromMessage?.[0] ?? set?.[0] ?? null;
    const soft = fromMessage?.[1] ?? set?.[1] ?? null;
    const limits = [hard && hard > 0 ? { s: hard, soft: false } : undefined, soft && soft > 0 ? { s: soft, soft: true } : undefined].filter((l) => l !== undefined);
    if (limits.length === 0) return fn();
    const first = limits.reduce((a, b) => (b.s < a.s ? b : a));
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([Promise.resolve().then(fn), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new TimeLimitExceeded(first.s, first.soft)), first.s * 1000)))]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** On the publishing connection; while the broker blocks it, the confirm comes when the alarm clears. */
  private publishConfirmed(exchange: string, routingKey: string, body: Buffer, options: Record<string, unknown>): Promise<void> {
    const channel = this.publishChannel;
    if (!channel) return Promise.reject(new BrokerUnavailableError("not connected to RabbitMQ"));
    return new Promise((resolve, reject) => {
      try {
        channel.publish(exchange, routingKey, body, options, (error) => (error ? reject(new Error(String(error))) : resolve()));
      } catch (e) {
        reject(e as Error);
      }
    });
  }

  /** Re-sends a delivery to its queue with changed headers (retry, redelivery count, a far eta's re-park). */
  private republish(d: Delivery, headers: Record<string, unknown>): Promise<void> {
    return this.publishConfirmed("", d.message.fields.routingKey, d.message.content, { ...d.message.properties, headers: typedTable({ ...d.message.properties.headers, ...headers }) });
  }

  /** Sends the message, unchanged but for reason headers, to the dead-letter exchange; then acks it. */
  private async deadLetter(d: Delivery, reason: string): Promise<void> {
    const headers = d.message.properties.headers ?? {};
    if (!this.o.logger) this.o.log(`dead-lettered ${headers.id ?? "(no id)"}: ${reason}`);
    const task = headers.task;
    const name = typeof task === "string" && task ? task : "(malformed)";
    const id = typeof headers.id === "string" ? headers.id : undefined;
    this.done(name, id, "dead_lettered", { headers, message: `Task ${name}[${id ?? "no id"}] dead-lettered: ${reason}` });
    await this.publishConfirmed(DEAD_LETTER_EXCHANGE, DEAD_LETTER_ROUTING_KEY, d.message.content, {
      ...d.message.properties,
      headers: typedTable({ ...headers, "x-shopfds-reason": reason, "x-shopfds-worker": this.hostname, "x-shopfds-dead-at": new Date().toISOString(), "x-shopfds-queue": d.message.fields.routingKey }),
    });
    this.settle(d, "ack");
  }

  /** Publishes a result to the caller's reply queue (the rpc:// backend), unless none is wanted. */
  private async reply(message: TaskMessage, status: "SUCCESS" | "FAILURE" | "RETRY" | "REVOKED", result: unknown, traceback: string | null = null): Promise<void> {
    const replyTo = message.properties.replyTo;
    if (!replyTo || (message.headers.ignore_result && status === "SUCCESS")) return;
    this.publishChannel?.publish("", replyTo, resultBody(message.headers.id, status, result, traceback), {
      correlationId: message.headers.id,
      contentType: "application/json",
      contentEncoding: "utf-8",
      deliveryMode: 1,
      priority: 0,
      headers: {},
    });
  }

  // ---- add_consumer / cancel_consumer -----------------------------------------------------------

  /**
   * Starts consuming `queue` too (kept across reconnects). A queue the broker refuses to declare (it
   * exists with other arguments: 406) is not kept: the refusal closed the channel, the connection is
   * rebuilt without it, and the error goes back to the caller.
   */
  async addConsumer(queue: string): Promise<boolean> {
    if (this.consumed.includes(queue)) return false;
    const channel = this.channel;
    if (!channel) throw new BrokerUnavailableError("not connected to RabbitMQ (reconnecting)");
    await this.declare(channel, queue);
    this.consumed.push(queue);
    await this.consume(channel, queue);
    return true;
  }

  private async consume(channel: ConfirmChannel, queue: string): Promise<void> {
    const { consumerTag } = await channel.consume(
      queue,
      (m) => {
        if (m) return this.receive(m, channel);
        // The broker cancelled this consumer (its queue was deleted, a node went away): rebuild all.
        if (this.consumerTags.get(queue) === consumerTag && !this.stopping) this.link?.reset(`the broker cancelled the consumer of ${queue}`);
      },
      { noAck: false },
    );
    this.consumerTags.set(queue, consumerTag);
  }

  async cancelConsumer(queue: string): Promise<void> {
    const i = this.consumed.indexOf(queue);
    if (i >= 0) this.consumed.splice(i, 1);
    const tag = this.consumerTags.get(queue);
    this.consumerTags.delete(queue);
    if (tag) await this.channel?.cancel(tag).catch(() => undefined);
  }

  /** The publishing channel once it is open (waiting up to `ms` through a reconnect), or undefined. */
  private async openPublishChannel(ms: number): Promise<ConfirmChannel | undefined> {
    const deadline = Date.now() + ms;
    await new Promise((r) => setImmediate(r)); // let a pending channel close be seen first
    while (!this.publishChannel) {
      if (Date.now() > deadline) return undefined;
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.publishChannel;
  }

  /** A follow-up's publish options with the trace context of the run that sends it. */
  private traced(options: Record<string, unknown>, ctx: ReturnType<typeof context.active>): Record<string, unknown> {
    const headers = { ...(options.headers as Record<string, unknown> | undefined) };
    injectTraceContext(headers, ctx);
    return { ...options, headers };
  }

  /** A task's outcome: counted (onTaskDone) and, with a logger, one ECS line with its trace id. */
  private done(task: string, id: string | undefined, outcome: TaskOutcome, o: { message: string; seconds?: number; span?: Span; headers?: Readonly<Record<string, unknown>>; error?: Error }): void {
    this.o.onTaskDone(task, outcome, o.seconds);
    const logger = this.o.logger;
    if (!logger) return;
    const ids = traceFields(o.span ?? trace.getSpan(extractTraceContext(o.headers)));
    const line = {
      ...ids,
      event: { action: `task-${outcome.replace("_", "-")}`, outcome: outcome === "succeeded" ? "success" : outcome === "revoked" ? "unknown" : "failure", ...(o.seconds !== undefined ? { duration: Math.round(o.seconds * 1e9) } : {}) },
      labels: { task, ...(id ? { task_id: id } : {}), worker: this.hostname },
      ...(o.error ? { err: o.error } : {}),
    };
    if (outcome === "succeeded" || outcome === "revoked") logger.info(line, o.message);
    else if (outcome === "retried") logger.warn(line, o.message);
    else logger.error(line, o.message);
  }

  private log(line: string): void {
    this.o.log(line);
  }
}
