/**
 * A Celery-compatible worker in TypeScript: consumes protocol-v2 tasks from RabbitMQ, runs up to
 * `concurrency` at once, and behaves as Celery's tooling expects, so Python services and Flower see it
 * like any Celery worker.
 *
 * - Nothing lost: a task is acknowledged only after it finished and its follow-up (result, retry,
 *   dead letter) is confirmed by the broker. A worker that dies mid-task leaves it to be redelivered.
 * - Retries: a failing task is re-sent with `retries + 1` and an eta (exponential back-off), up to
 *   `maxRetries` (3: four attempts in all); then it goes to the dead-letter queue with its reason.
 * - Poison: malformed messages and unknown task names go to the dead-letter queue with the reason; the
 *   worker keeps running. A task redelivered more than `maxRedeliveries` times (its worker was lost
 *   each time) is dead-lettered instead of killing worker after worker.
 * - Events on `celeryev` (worker-online/-heartbeat/-offline, task-received/-started/-succeeded/
 *   -failed/-retried/-rejected) and answers on the pidbox (ping, stats, active, reserved, scheduled,
 *   revoked, registered, active_queues, conf, clock, hello, enable_events, heartbeat).
 * - Graceful stop: stops taking tasks, lets running ones finish for `shutdownTimeoutMs`, then returns
 *   the rest to the queue, and says worker-offline.
 */
import { hostname as osHostname, loadavg } from "node:os";
import amqp, { type ChannelModel, type ConfirmChannel, type ConsumeMessage } from "amqplib";
import { DEAD_LETTER_EXCHANGE, DEAD_LETTER_ROUTING_KEY, TASK_QUEUE, TASK_QUEUE_ARGUMENTS } from "../../components/rabbitmq/render";
import { exceptionInfo, isoWithOffset, MalformedTaskError, parseTaskMessage, parseTime, pyRepr, resultBody, TaskMessage, utcoffset } from "./protocol";

export interface TaskContext {
  readonly id: string;
  readonly name: string;
  /** 0 on the first attempt. */
  readonly retries: number;
  readonly hostname: string;
}

export type TaskHandler = (args: unknown[], kwargs: Record<string, unknown>, ctx: TaskContext) => unknown | Promise<unknown>;

export interface WorkerOptions {
  readonly url: string;
  /** Node name shown in Flower and answered to on the pidbox. @default `ts-worker-<pid>@<host>` */
  readonly hostname?: string;
  /** @default "celery" */
  readonly queue?: string;
  /** Tasks run at once; also the prefetch. @default 4 (FR-015) */
  readonly concurrency?: number;
  /** Retries after the first attempt. @default 3 (FR-021) */
  readonly maxRetries?: number;
  /** Delay before retry `n` (1, 2, 3…), in ms. @default 1000 × 2^(n-1) */
  readonly retryDelayMs?: (retry: number) => number;
  /** Redeliveries tolerated (a worker lost mid-task) before the task is dead-lettered. @default 3 */
  readonly maxRedeliveries?: number;
  /** @default 2 */
  readonly heartbeatSeconds?: number;
  /** @default 30000 */
  readonly shutdownTimeoutMs?: number;
  /** @default no output */
  readonly log?: (line: string) => void;
  /** Called at each heartbeat (every `heartbeatSeconds`, while connected): a liveness signal. */
  readonly onHeartbeat?: () => void;
  /** Called when a task run ends, for metrics (ServiceMetrics.observeJob fits). */
  readonly onTaskDone?: (task: string, outcome: TaskOutcome, seconds?: number) => void;
}

export type TaskOutcome = "succeeded" | "failed" | "retried" | "dead_lettered";

const REDELIVERIES = "x-shopfds-redeliveries";
const SOFTWARE = { sw_ident: "shopfds-ts-celery", sw_ver: "1.0.0", sw_sys: "Linux" };

interface Running {
  id: string;
  name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  started: number;
  delivery: ConsumeMessage;
}

export class Worker {
  readonly hostname: string;
  private readonly o: Required<Omit<WorkerOptions, "hostname" | "log" | "onHeartbeat" | "onTaskDone">> & {
    log: (line: string) => void;
    onHeartbeat?: () => void;
    onTaskDone: (task: string, outcome: TaskOutcome, seconds?: number) => void;
  };
  private readonly tasks = new Map<string, TaskHandler>();
  private connection?: ChannelModel;
  private channel?: ConfirmChannel;
  private events?: ConfirmChannel;
  private consumerTag?: string;
  private readonly running = new Map<string, Running>();
  private readonly held = new Map<string, { message: TaskMessage; delivery: ConsumeMessage; timer: NodeJS.Timeout }>();
  private readonly totals: Record<string, number> = {};
  private processed = 0;
  private clock = 0;
  private startedAt = 0;
  private heartbeat?: NodeJS.Timeout;
  private stopping?: Promise<void>;
  private idle?: () => void;

  constructor(options: WorkerOptions) {
    this.hostname = options.hostname ?? `ts-worker-${process.pid}@${osHostname()}`;
    this.o = {
      url: options.url,
      queue: options.queue ?? TASK_QUEUE,
      concurrency: options.concurrency ?? 4,
      maxRetries: options.maxRetries ?? 3,
      retryDelayMs: options.retryDelayMs ?? ((n) => 1000 * 2 ** (n - 1)),
      maxRedeliveries: options.maxRedeliveries ?? 3,
      heartbeatSeconds: options.heartbeatSeconds ?? 2,
      shutdownTimeoutMs: options.shutdownTimeoutMs ?? 30_000,
      log: options.log ?? (() => undefined),
      onHeartbeat: options.onHeartbeat,
      onTaskDone: options.onTaskDone ?? (() => undefined),
    };
    if (!Number.isInteger(this.o.concurrency) || this.o.concurrency < 1) throw new RangeError(`concurrency: must be a positive integer (got ${options.concurrency})`);
  }

  /** Registers a task by its Celery name (e.g. `shopfds.send_order_email`). */
  register(name: string, handler: TaskHandler): this {
    if (this.tasks.has(name)) throw new Error(`task ${name} is already registered`);
    this.tasks.set(name, handler);
    return this;
  }

  get activeCount(): number {
    return this.running.size;
  }

  async start(): Promise<void> {
    this.connection = await amqp.connect(this.o.url, { clientProperties: { connection_name: this.hostname } });
    this.connection.on("error", (e) => this.o.log(`connection error: ${e.message}`));
    const channel = await this.connection.createConfirmChannel();
    const events = await this.connection.createConfirmChannel();
    channel.on("error", (e) => this.o.log(`channel error: ${e.message}`));
    events.on("error", (e) => this.o.log(`events channel error: ${e.message}`));
    this.channel = channel;
    this.events = events;
    this.startedAt = Date.now();
    // The same declarations Celery makes, so neither side trips over the other's (406 otherwise).
    await channel.assertQueue(this.o.queue, { durable: true, arguments: this.o.queue === TASK_QUEUE ? { ...TASK_QUEUE_ARGUMENTS } : {} });
    await events.assertExchange("celeryev", "topic", { durable: true });
    await this.startPidbox();
    // Global QoS, as Celery sets it, so the prefetch can grow while tasks wait for their eta.
    await channel.prefetch(this.o.concurrency, true);
    this.consumerTag = (await channel.consume(this.o.queue, (m) => m && void this.onDelivery(m), { noAck: false })).consumerTag;
    this.emit("worker-online", this.workerFields());
    this.heartbeat = setInterval(() => {
      this.emit("worker-heartbeat", this.workerFields());
      this.o.onHeartbeat?.();
    }, this.o.heartbeatSeconds * 1000);
    this.heartbeat.unref();
    this.o.log(`${this.hostname} consuming ${this.o.queue} (concurrency ${this.o.concurrency}; tasks: ${[...this.tasks.keys()].join(", ")})`);
  }

  /** Stops taking tasks, waits for running ones (up to shutdownTimeoutMs), requeues the rest. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const channel = this.channel;
      if (!channel) return;
      if (this.consumerTag) await channel.cancel(this.consumerTag).catch(() => undefined);
      for (const [, h] of this.held) {
        clearTimeout(h.timer);
        channel.nack(h.delivery, false, true);
      }
      this.held.clear();
      if (this.running.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([new Promise<void>((r) => (this.idle = r)), new Promise((r) => (timer = setTimeout(r, this.o.shutdownTimeoutMs)))]);
        clearTimeout(timer);
      }
      for (const [, r] of this.running) channel.nack(r.delivery, false, true);
      clearInterval(this.heartbeat);
      this.emit("worker-offline", this.workerFields());
      await this.events?.waitForConfirms().catch(() => undefined);
      await this.connection?.close().catch(() => undefined);
    })();
    return this.stopping;
  }

  private workerFields() {
    return { freq: this.o.heartbeatSeconds, active: this.running.size, processed: this.processed, loadavg: loadavg().map((n) => Math.round(n * 100) / 100), ...SOFTWARE };
  }

  /** Publishes one event on celeryev (routing key: the type with dots), as Celery's dispatcher does. */
  private emit(type: string, fields: Record<string, unknown>): void {
    this.clock++;
    const event = { hostname: this.hostname, utcoffset: utcoffset(), pid: process.pid, clock: this.clock, ...fields, timestamp: Date.now() / 1000, type };
    try {
      this.events?.publish("celeryev", type.replace(/-/g, "."), Buffer.from(JSON.stringify(event)), {
        contentType: "application/json",
        contentEncoding: "utf-8",
        deliveryMode: 1,
        headers: { hostname: this.hostname },
      });
    } catch (e) {
      this.o.log(`event ${type} not sent: ${(e as Error).message}`);
    }
  }

  private async onDelivery(delivery: ConsumeMessage): Promise<void> {
    const channel = this.channel as ConfirmChannel;
    let message: TaskMessage;
    try {
      message = parseTaskMessage(delivery);
    } catch (error) {
      const reason = error instanceof MalformedTaskError ? error.reason : String(error);
      await this.deadLetter(delivery, `malformed message: ${reason}`);
      return;
    }
    const h = message.headers;
    if (!this.tasks.has(h.task)) {
      this.emit("task-rejected", { uuid: h.id, requeue: false });
      await this.reply(message, "FAILURE", { exc_type: "NotRegistered", exc_message: [h.task], exc_module: "celery.exceptions" });
      await this.deadLetter(delivery, `unknown task ${h.task}: this worker runs ${[...this.tasks.keys()].join(", ") || "nothing"}`);
      return;
    }
    if (delivery.fields.redelivered) {
      // The worker that had it was lost. Count it in the message itself (a re-publish), so the count
      // survives this worker dying too; past the limit, it is a poison message.
      const seen = Number((delivery.properties.headers ?? {})[REDELIVERIES] ?? 0) + 1;
      if (seen > this.o.maxRedeliveries) {
        await this.deadLetter(delivery, `redelivered ${seen} times: the worker running it was lost each time`);
        return;
      }
      await this.publishConfirmed(channel, "", delivery.fields.routingKey, delivery.content, { ...delivery.properties, headers: { ...delivery.properties.headers, [REDELIVERIES]: seen } });
      channel.ack(delivery);
      return;
    }
    const expires = parseTime(h.expires);
    if (expires && expires.getTime() < Date.now()) {
      this.emit("task-revoked", { uuid: h.id, terminated: false, signum: null, expired: true });
      await this.reply(message, "REVOKED", { exc_type: "TaskRevokedError", exc_message: ["expired"], exc_module: "celery.exceptions" });
      channel.ack(delivery);
      return;
    }
    this.emit("task-received", { uuid: h.id, name: h.task, args: h.argsrepr, kwargs: h.kwargsrepr, root_id: h.root_id, parent_id: h.parent_id, retries: h.retries, eta: h.eta, expires: h.expires });
    const eta = parseTime(h.eta);
    const wait = eta ? eta.getTime() - Date.now() : 0;
    if (wait > 0) {
      // Held unacknowledged until its eta, with the prefetch raised by one meanwhile (as Celery does).
      const timer = setTimeout(() => {
        this.held.delete(h.id);
        void channel.prefetch(this.o.concurrency + this.held.size, true).catch(() => undefined);
        void this.run(message, delivery);
      }, wait);
      this.held.set(h.id, { message, delivery, timer });
      await channel.prefetch(this.o.concurrency + this.held.size, true);
      return;
    }
    await this.run(message, delivery);
  }

  private async run(message: TaskMessage, delivery: ConsumeMessage): Promise<void> {
    const channel = this.channel as ConfirmChannel;
    const h = message.headers;
    const started = Date.now();
    this.running.set(h.id, { id: h.id, name: h.task, args: message.args, kwargs: message.kwargs, started, delivery });
    this.processed++;
    this.totals[h.task] = (this.totals[h.task] ?? 0) + 1;
    this.emit("task-started", { uuid: h.id });
    try {
      let value: unknown;
      let failure: unknown;
      try {
        value = await (this.tasks.get(h.task) as TaskHandler)(message.args, message.kwargs, { id: h.id, name: h.task, retries: h.retries, hostname: this.hostname });
      } catch (error) {
        failure = error ?? new Error("task failed");
      }
      if (failure === undefined) {
        await this.reply(message, "SUCCESS", value ?? null);
        this.emit("task-succeeded", { uuid: h.id, result: pyRepr(value ?? null), runtime: (Date.now() - started) / 1000 });
        this.o.onTaskDone(h.task, "succeeded", (Date.now() - started) / 1000);
      } else {
        const error = failure instanceof Error ? failure : new Error(String(failure));
        const exception = `${error.name}(${pyRepr(error.message)})`;
        if (h.retries < this.o.maxRetries) {
          const retry = h.retries + 1;
          const eta = new Date(Date.now() + this.o.retryDelayMs(retry));
          const headers = { ...delivery.properties.headers, retries: retry, eta: isoWithOffset(eta), parent_id: h.id };
          await this.publishConfirmed(channel, "", delivery.fields.routingKey, delivery.content, { ...delivery.properties, headers });
          this.emit("task-retried", { uuid: h.id, exception, traceback: error.stack ?? null });
          this.o.onTaskDone(h.task, "retried", (Date.now() - started) / 1000);
          await this.reply(message, "RETRY", exceptionInfo(error), error.stack ?? null);
        } else {
          this.emit("task-failed", { uuid: h.id, exception, traceback: error.stack ?? null });
          this.o.onTaskDone(h.task, "failed", (Date.now() - started) / 1000);
          await this.reply(message, "FAILURE", exceptionInfo(error), error.stack ?? null);
          await this.deadLetter(delivery, `failed after ${h.retries + 1} attempts: ${error.name}: ${error.message}`);
          return;
        }
      }
      channel.ack(delivery);
    } catch (error) {
      // The broker connection failed while finishing: leave the delivery unacknowledged; the broker
      // redelivers it when the channel closes.
      this.o.log(`task ${h.id} (${h.task}) could not be finished: ${(error as Error).message}`);
    } finally {
      this.running.delete(h.id);
      if (this.running.size === 0) this.idle?.();
    }
  }

  private publishConfirmed(channel: ConfirmChannel, exchange: string, routingKey: string, body: Buffer, options: Record<string, unknown>): Promise<void> {
    return new Promise((resolve, reject) => {
      channel.publish(exchange, routingKey, body, options, (error) => (error ? reject(new Error(String(error))) : resolve()));
    });
  }

  /** Sends the message, unchanged but for reason headers, to the dead-letter exchange; then acks it. */
  private async deadLetter(delivery: ConsumeMessage, reason: string): Promise<void> {
    const channel = this.channel as ConfirmChannel;
    this.o.log(`dead-lettered ${(delivery.properties.headers ?? {}).id ?? "(no id)"}: ${reason}`);
    const task = (delivery.properties.headers ?? {}).task;
    this.o.onTaskDone(typeof task === "string" && task ? task : "(malformed)", "dead_lettered");
    await this.publishConfirmed(channel, DEAD_LETTER_EXCHANGE, DEAD_LETTER_ROUTING_KEY, delivery.content, {
      ...delivery.properties,
      headers: { ...delivery.properties.headers, "x-shopfds-reason": reason, "x-shopfds-worker": this.hostname, "x-shopfds-dead-at": new Date().toISOString(), "x-shopfds-queue": delivery.fields.routingKey },
    });
    channel.ack(delivery);
  }

  /** Publishes a result to the caller's reply queue (the rpc:// backend), unless none is wanted. */
  private async reply(message: TaskMessage, status: "SUCCESS" | "FAILURE" | "RETRY" | "REVOKED", result: unknown, traceback: string | null = null): Promise<void> {
    const replyTo = message.properties.replyTo;
    if (!replyTo || (message.headers.ignore_result && status === "SUCCESS")) return;
    this.channel?.publish("", replyTo, resultBody(message.headers.id, status, result, traceback), {
      correlationId: message.headers.id,
      contentType: "application/json",
      contentEncoding: "utf-8",
      deliveryMode: 1,
      priority: 0,
      headers: {},
    });
  }

  private async startPidbox(): Promise<void> {
    const channel = this.channel as ConfirmChannel;
    await channel.assertExchange("celery.pidbox", "fanout", { durable: false });
    await channel.assertExchange("reply.celery.pidbox", "direct", { durable: false });
    const queue = `${this.hostname}.celery.pidbox`;
    await channel.assertQueue(queue, { durable: false, autoDelete: true, arguments: { "x-message-ttl": 300_000, "x-expires": 10_000 } });
    await channel.bindQueue(queue, "celery.pidbox", "");
    await channel.consume(queue, (m) => m && this.onControl(m), { noAck: true });
  }

  private addressed(body: { destination?: unknown; pattern?: unknown; matcher?: unknown }): boolean {
    if (Array.isArray(body.destination)) return body.destination.includes(this.hostname);
    if (typeof body.pattern === "string" && body.pattern) {
      const re = body.matcher === "pcre" ? new RegExp(body.pattern) : new RegExp(`^${body.pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
      return re.test(this.hostname);
    }
    return true;
  }

  private onControl(msg: ConsumeMessage): void {
    let body: { method?: string; arguments?: Record<string, unknown>; destination?: unknown; pattern?: unknown; matcher?: unknown; ticket?: string; reply_to?: { exchange?: string; routing_key?: string } };
    try {
      body = JSON.parse(msg.content.toString("utf8"));
    } catch {
      return;
    }
    if (!this.addressed(body)) return;
    const remoteClock = Number((msg.properties.headers ?? {}).clock);
    this.clock = Number.isFinite(remoteClock) ? Math.max(this.clock, remoteClock) + 1 : this.clock + 1;
    let result: unknown;
    try {
      result = this.control(body.method ?? "", body.arguments ?? {});
    } catch (error) {
      result = { error: `${(error as Error).name}('${(error as Error).message}')` };
    }
    if (result === NO_REPLY || !body.reply_to?.routing_key || !body.ticket) return;
    this.channel?.publish(body.reply_to.exchange ?? "reply.celery.pidbox", body.reply_to.routing_key, Buffer.from(JSON.stringify({ [this.hostname]: result })), {
      contentType: "application/json",
      contentEncoding: "utf-8",
      deliveryMode: 1,
      priority: 0,
      headers: { ticket: body.ticket, clock: this.clock },
    });
  }

  private requestInfo(r: { id: string; name: string; args: unknown[]; kwargs: Record<string, unknown>; delivery: ConsumeMessage }, active: boolean, started?: number) {
    return {
      id: r.id,
      name: r.name,
      args: pyRepr(r.args),
      kwargs: pyRepr(r.kwargs),
      type: r.name,
      hostname: this.hostname,
      time_start: active ? (started ?? Date.now()) / 1000 : null,
      acknowledged: false,
      delivery_info: { exchange: r.delivery.fields.exchange, routing_key: r.delivery.fields.routingKey, priority: 0, redelivered: r.delivery.fields.redelivered },
      worker_pid: active ? process.pid : null,
    };
  }

  /** The remote-control commands Flower and `celery inspect` use. */
  private control(method: string, args: Record<string, unknown>): unknown {
    switch (method) {
      case "ping":
        return { ok: "pong" };
      case "clock":
        return { clock: this.clock };
      case "hello":
        return { revoked: {}, clock: this.clock };
      case "registered":
        return [...this.tasks.keys()].sort();
      case "active":
        return [...this.running.values()].map((r) => this.requestInfo(r, true, r.started));
      case "reserved":
        return [];
      case "scheduled":
        return [...this.held.values()].map((h) => ({
          eta: h.message.headers.eta,
          priority: 6,
          request: this.requestInfo({ id: h.message.headers.id, name: h.message.headers.task, args: h.message.args, kwargs: h.message.kwargs, delivery: h.delivery }, false),
        }));
      case "revoked":
        return [];
      case "query_task":
        return Object.fromEntries([...this.running.values()].filter((r) => ((args.ids as string[]) ?? []).includes(r.id)).map((r) => [r.id, ["active", this.requestInfo(r, true, r.started)]]));
      case "conf":
        return { task_default_queue: this.o.queue, worker_concurrency: this.o.concurrency, task_acks_late: true, worker_send_task_events: true };
      case "enable_events":
        return { ok: "task events already enabled" };
      case "disable_events":
        return { error: "task events cannot be disabled on this worker" };
      case "heartbeat":
        this.emit("worker-heartbeat", { freq: 5, ...SOFTWARE });
        return NO_REPLY;
      case "active_queues":
        return [
          {
            name: this.o.queue,
            exchange: { name: "celery", type: "direct", arguments: null, durable: true, passive: false, auto_delete: false, delivery_mode: null, no_declare: false },
            routing_key: this.o.queue,
            queue_arguments: this.o.queue === TASK_QUEUE ? { ...TASK_QUEUE_ARGUMENTS } : null,
            binding_arguments: null,
            consumer_arguments: null,
            durable: true,
            exclusive: false,
            auto_delete: false,
            no_ack: false,
            alias: null,
            bindings: [],
            no_declare: null,
            expires: null,
            message_ttl: null,
            max_length: null,
            max_length_bytes: null,
            max_priority: null,
          },
        ];
      case "stats": {
        const url = new URL(this.o.url);
        const usage = process.resourceUsage();
        return {
          total: { ...this.totals },
          pid: process.pid,
          clock: String(this.clock),
          uptime: Math.round((Date.now() - this.startedAt) / 1000),
          pool: { "max-concurrency": this.o.concurrency, processes: [process.pid], "max-tasks-per-child": "N/A", "put-guarded-by-semaphore": false, timeouts: [0, 0], implementation: "node:event-loop" },
          broker: {
            hostname: url.hostname,
            userid: decodeURIComponent(url.username),
            virtual_host: decodeURIComponent(url.pathname.slice(1)) || "/",
            port: Number(url.port || 5672),
            insist: false,
            ssl: url.protocol === "amqps:",
            transport: "amqp",
            connect_timeout: 4,
            transport_options: {},
            login_method: "PLAIN",
            uri_prefix: null,
            heartbeat: 60,
            failover_strategy: "round-robin",
            alternates: [],
          },
          prefetch_count: this.o.concurrency + this.held.size,
          rusage: { utime: usage.userCPUTime / 1e6, stime: usage.systemCPUTime / 1e6, maxrss: usage.maxRSS, ixrss: 0, idrss: 0, isrss: 0, minflt: usage.minorPageFault, majflt: usage.majorPageFault, nswap: usage.swappedOut, inblock: usage.fsRead, oublock: usage.fsWrite, msgsnd: usage.ipcSent, msgrcv: usage.ipcReceived, nsignals: usage.signalsCount, nvcsw: usage.voluntaryContextSwitches, nivcsw: usage.involuntaryContextSwitches },
        };
      }
      case "shutdown":
        setImmediate(() => void this.stop());
        return { ok: "shutting down" };
      default:
        throw Object.assign(new Error(method), { name: "KeyError" });
    }
  }
}

const NO_REPLY = Symbol("no reply");
