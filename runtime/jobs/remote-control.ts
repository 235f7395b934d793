/**
 * Celery's remote control (the pidbox) for the TypeScript worker: the inspect and control commands
 * `celery inspect`/`celery control` and Flower send, answered with the shapes and texts Celery 5.2's
 * worker/control.py gives (CELERY-NOTES §5–6). Unknown commands answer `KeyError` as Celery does.
 */
import { REPLY_EXCHANGE } from "./topology";
import type { ConsumeMessage } from "amqplib";
import { pyRepr } from "./protocol";

export const NO_REPLY = Symbol("no reply");

/** A task as remote control reports it: a snapshot, never the worker's own state. */
export interface ControlledTask {
  readonly id: string;
  readonly name: string;
  readonly args: unknown;
  readonly kwargs: unknown;
  /** When it started (ms since the epoch); running tasks only. */
  readonly startedMs?: number;
  readonly exchange: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
  /** Scheduled tasks: the eta header. */
  readonly eta?: unknown;
}

/** What a worker is asked to do by the inspect and control commands, in their own terms. */
export interface ControlTarget {
  readonly hostname: string;
  /** The Lamport clock of the worker's events. */
  readonly clock: number;
  /** Merges a clock received with a message (or ticks when there is none). */
  mergeClock(remote: number | undefined): void;
  registered(): string[];
  hasTask(name: string): boolean;
  tasksIn(state: "active" | "reserved" | "scheduled"): ControlledTask[];
  isRunning(id: string): boolean;
  revoke(ids: readonly string[]): void;
  /** Revoked ids as Celery's mingle exchanges them, and as `inspect revoked` lists them. */
  revokedForMingle(): unknown;
  revokedList(): string[];
  setRateLimit(task: string, rate: unknown): "disabled" | "set";
  setTimeLimits(task: string, hard: number | null, soft: number | null): void;
  readonly concurrency: number;
  /** Sets the pool to `concurrency` slots (grow, shrink, autoscale), applying the prefetch that follows. */
  resize(concurrency: number): void;
  addConsumer(queue: string): Promise<boolean>;
  cancelConsumer(queue: string): Promise<void>;
  readonly brokerUrl: string;
  readonly defaultQueue: string;
  readonly queues: readonly string[];
  queueArguments(queue: string): Record<string, unknown>;
  readonly prefetchMultiplier: number;
  prefetch(): number;
  readonly taskEvents: boolean;
  /** Turns the task event group on or off; false when it already was. */
  setTaskEvents(on: boolean): boolean;
  /** Publishes a worker-heartbeat event now. */
  heartbeat(): void;
  statistics(): { readonly totals: Readonly<Record<string, number>>; readonly processed: number; readonly startedAt: number; readonly active: number };
  /** Stops the worker (after this reply is sent). */
  shutdown(): void;
}

interface ControlBody {
  method?: string;
  arguments?: Record<string, unknown>;
  destination?: unknown;
  pattern?: unknown;
  matcher?: unknown;
  ticket?: string;
  reply_to?: { exchange?: string; routing_key?: string };
}

export interface ControlReply {
  readonly exchange: string;
  readonly routingKey: string;
  readonly ticket: string;
  readonly result: unknown;
}

const ok = (value: string) => ({ ok: value });
const nok = (value: string) => ({ error: value });

/** Whether a broadcast is meant for `hostname`; an invalid pattern addresses nobody (and says so). */
export function addressed(body: ControlBody, hostname: string): boolean {
  if (Array.isArray(body.destination)) return body.destination.includes(hostname);
  if (typeof body.pattern === "string" && body.pattern) {
    let re: RegExp;
    try {
      re = body.matcher === "pcre" ? new RegExp(body.pattern) : new RegExp(`^${body.pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
    } catch (e) {
      throw new Error(`destination pattern ${JSON.stringify(body.pattern)} is not a valid ${String(body.matcher ?? "glob")} pattern: ${(e as Error).message}`);
    }
    return re.test(hostname);
  }
  return true;
}

/** Reads a pidbox message and computes the reply (undefined: not for us, or no reply wanted). */
export async function controlReply(w: ControlTarget, msg: ConsumeMessage): Promise<ControlReply | undefined> {
  let body: ControlBody;
  try {
    body = JSON.parse(msg.content.toString("utf8")) as ControlBody;
  } catch {
    throw new Error("not JSON");
  }
  if (body === null || typeof body !== "object") throw new Error("not a control message");
  if (!addressed(body, w.hostname)) return undefined;
  const remoteClock = Number((msg.properties.headers ?? {}).clock);
  w.mergeClock(Number.isFinite(remoteClock) ? remoteClock : undefined);
  let result: unknown;
  try {
    result = await control(w, String(body.method ?? ""), body.arguments && typeof body.arguments === "object" ? body.arguments : {});
  } catch (error) {
    result = { error: `${(error as Error).name}(${pyRepr((error as Error).message)})` };
  }
  if (!body.reply_to?.routing_key || !body.ticket) return undefined;
  return { exchange: body.reply_to.exchange ?? REPLY_EXCHANGE, routingKey: body.reply_to.routing_key, ticket: body.ticket, result };
}

function requestInfo(w: ControlTarget, r: ControlledTask, active: boolean) {
  return {
    id: r.id,
    name: r.name,
    args: pyRepr(r.args),
    kwargs: pyRepr(r.kwargs),
    type: r.name,
    hostname: w.hostname,
    time_start: active && r.startedMs ? r.startedMs / 1000 : null,
    acknowledged: false,
    delivery_info: { exchange: r.exchange, routing_key: r.routingKey, priority: 0, redelivered: r.redelivered },
    worker_pid: active ? process.pid : null,
  };
}

/** broker_url as Celery shows it: the password masked. */
function maskedUrl(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = "**";
  u.search = "";
  return u.toString();
}

function ids(value: unknown): string[] {
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === "string" && v !== "");
}

const positive = (value: unknown, fallback: number): number => {
  const n = value === undefined || value === null ? fallback : Number(value);
  if (!Number.isInteger(n) || n < 1) throw Object.assign(new Error(`n: must be a positive integer (got ${JSON.stringify(value)})`), { name: "ValueError" });
  return n;
};

/** The commands. Exposed for tests; the worker calls it through controlReply. */
export async function control(w: ControlTarget, method: string, args: Record<string, unknown>): Promise<unknown> {
  switch (method) {
    case "ping":
      return ok("pong");
    case "clock":
      return { clock: w.clock };
    case "hello":
      // Mingle: a starting worker sends its revoked ids and takes ours (Celery merges both ways).
      if (args.from_node === w.hostname) return NO_REPLY;
      if (args.revoked && typeof args.revoked === "object") w.revoke(Array.isArray(args.revoked) ? ids(args.revoked) : Object.keys(args.revoked));
      return { revoked: w.revokedForMingle(), clock: w.clock };
    case "registered":
      return w.registered();
    case "active":
      return w.tasksIn("active").map((r) => requestInfo(w, r, true));
    case "reserved":
      return w.tasksIn("reserved").map((r) => requestInfo(w, r, false));
    case "scheduled":
      return w.tasksIn("scheduled").map((h) => ({ eta: h.eta, priority: 6, request: requestInfo(w, h, false) }));
    case "revoked":
      return w.revokedList();
    case "query_task": {
      const wanted = new Set(ids(args.ids));
      const out: Record<string, unknown> = {};
      for (const state of ["active", "reserved", "scheduled"] as const) for (const r of w.tasksIn(state)) if (wanted.has(r.id)) out[r.id] = [state, requestInfo(w, r, state === "active")];
      return out;
    }
    case "revoke": {
      const list = ids(args.task_id);
      w.revoke(list);
      if (args.terminate) {
        // A running JavaScript task cannot be killed from outside; say which ones keep running.
        const running = list.filter((id) => w.isRunning(id));
        if (running.length > 0) return ok(`tasks ${list.join(", ")} flagged as revoked; terminate: not supported for running tasks on this worker (${running.join(", ")} will finish)`);
      }
      return ok(`tasks ${list.join(", ")} flagged as revoked`);
    }
    case "rate_limit": {
      const task = String(args.task_name ?? "");
      if (!w.hasTask(task)) return nok("unknown task");
      try {
        return w.setRateLimit(task, args.rate_limit) === "disabled" ? ok("rate limit disabled successfully") : ok("new rate limit set successfully");
      } catch (e) {
        return nok(`Invalid rate limit string: ${(e as Error).message}`);
      }
    }
    case "time_limit": {
      const task = String(args.task_name ?? "");
      if (!w.hasTask(task)) return nok("unknown task");
      const seconds = (v: unknown) => (v === null || v === undefined ? null : Number(v) > 0 ? Number(v) : null);
      w.setTimeLimits(task, seconds(args.hard), seconds(args.soft));
      return ok("time limits set successfully");
    }
    case "pool_grow":
      w.resize(w.concurrency + positive(args.n, 1));
      return ok("pool will grow");
    case "pool_shrink": {
      const n = positive(args.n, 1);
      if (w.concurrency - n < 1) return nok(`pool_shrink: cannot go below 1 (concurrency is ${w.concurrency})`);
      w.resize(w.concurrency - n);
      return ok("pool will shrink");
    }
    case "autoscale": {
      // No autoscaler here: the pool is set to `max` (what an autoscaler under load would reach).
      const max = positive(args.max, w.concurrency);
      const min = args.min === undefined || args.min === null ? 0 : Number(args.min);
      if (!Number.isInteger(min) || min < 0 || min > max) return nok(`autoscale: min must be an integer from 0 to max (got ${JSON.stringify(args.min)})`);
      w.resize(max);
      return ok(`autoscale now max=${max} min=${min}`);
    }
    case "add_consumer": {
      const queue = String(args.queue ?? "");
      if (!queue) return nok("add_consumer: queue is required");
      return (await w.addConsumer(queue)) ? ok(`add consumer ${queue}`) : ok(`already consuming from ${queue}`);
    }
    case "cancel_consumer": {
      const queue = String(args.queue ?? "");
      await w.cancelConsumer(queue);
      return ok(`no longer consuming from ${queue}`);
    }
    case "conf":
      return {
        broker_url: maskedUrl(w.brokerUrl),
        result_backend: "rpc://",
        task_default_queue: w.defaultQueue,
        task_default_exchange: w.defaultQueue,
        task_default_routing_key: w.defaultQueue,
        task_queues: w.queues,
        task_routes: null,
        task_serializer: "json",
        result_serializer: "json",
        accept_content: ["json"],
        task_acks_late: true,
        task_reject_on_worker_lost: true,
        worker_concurrency: w.concurrency,
        worker_prefetch_multiplier: w.prefetchMultiplier,
        worker_send_task_events: w.taskEvents,
        task_send_sent_event: false,
        enable_utc: true,
        timezone: "UTC",
      };
    // As Celery's: toggles the `task` event group; worker events go on regardless.
    case "enable_events":
      return ok(w.setTaskEvents(true) ? "task events enabled" : "task events already enabled");
    case "disable_events":
      return ok(w.setTaskEvents(false) ? "task events disabled" : "task events already disabled");
    case "heartbeat":
      w.heartbeat();
      return NO_REPLY;
    case "active_queues":
      return w.queues.map((name) => ({
        name,
        exchange: { name: "celery", type: "direct", arguments: null, durable: true, passive: false, auto_delete: false, delivery_mode: null, no_declare: false },
        routing_key: name,
        queue_arguments: Object.keys(w.queueArguments(name)).length ? w.queueArguments(name) : null,
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
        max_priority: typeof w.queueArguments(name)["x-max-priority"] === "number" ? w.queueArguments(name)["x-max-priority"] : null,
      }));
    case "stats": {
      const url = new URL(w.brokerUrl);
      const usage = process.resourceUsage();
      const stats = w.statistics();
      const total = stats.processed;
      return {
        total: { ...stats.totals },
        pid: process.pid,
        clock: String(w.clock),
        uptime: Math.round((Date.now() - stats.startedAt) / 1000),
        pool: {
          "max-concurrency": w.concurrency,
          processes: [process.pid],
          "max-tasks-per-child": "N/A",
          "put-guarded-by-semaphore": false,
          timeouts: [0, 0],
          // One event loop runs every task, so it takes all the writes.
          writes: { total, avg: total ? "1.00" : "0.00", all: total ? "1.00" : "0.00", raw: String(total), strategy: "fair", inqueues: { total: 1, active: stats.active > 0 ? 1 : 0 } },
          implementation: "node:event-loop",
        },
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
          heartbeat: 10,
          failover_strategy: "round-robin",
          alternates: [],
        },
        prefetch_count: w.prefetch(),
        rusage: { utime: usage.userCPUTime / 1e6, stime: usage.systemCPUTime / 1e6, maxrss: usage.maxRSS, ixrss: 0, idrss: 0, isrss: 0, minflt: usage.minorPageFault, majflt: usage.majorPageFault, nswap: usage.swappedOut, inblock: usage.fsRead, oublock: usage.fsWrite, msgsnd: usage.ipcSent, msgrcv: usage.ipcReceived, nsignals: usage.signalsCount, nvcsw: usage.voluntaryContextSwitches, nivcsw: usage.involuntaryContextSwitches },
      };
    }
    case "shutdown":
      w.shutdown();
      return ok("shutting down");
    default:
      throw Object.assign(new Error(method), { name: "KeyError" });
  }
}
