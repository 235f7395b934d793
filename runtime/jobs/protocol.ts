/**
 * Celery's task message protocol v2, as Celery 5.2 writes and reads it over AMQP (CELERY-NOTES §2–4):
 * building a task message (properties, the 16 headers, the `[args, kwargs, embed]` body), reading one
 * strictly (a malformed message is refused with a reason instead of crashing a worker), result bodies
 * for the `rpc://` backend, and the Python `repr` strings that headers and events carry.
 *
 * Hand-written because no maintained Node library speaks this protocol faithfully (celery-node acks
 * before running, has no retries and sends no events).
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { ShopfdsError } from "../errors";

export const EMBED = { callbacks: null, errbacks: null, chain: null, chord: null } as const;

export interface TaskHeaders {
  lang: string;
  task: string;
  id: string;
  shadow: string | null;
  eta: string | null;
  expires: string | null;
  group: string | null;
  group_index: number | null;
  retries: number;
  timelimit: [number | null, number | null];
  root_id: string;
  parent_id: string | null;
  argsrepr: string;
  kwargsrepr: string;
  origin: string;
  ignore_result: boolean;
  [extra: string]: unknown;
}

export interface TaskMessage {
  readonly headers: TaskHeaders;
  readonly args: unknown[];
  readonly kwargs: Record<string, unknown>;
  readonly embed: Record<string, unknown>;
  readonly properties: { correlationId: string; replyTo?: string; priority: number; expiration?: string };
}

export interface BuildOptions {
  readonly id?: string;
  /** Run no earlier than this (Celery `eta`); `countdown` (seconds) is turned into an eta. */
  readonly eta?: Date;
  readonly countdown?: number;
  /** Discard if not started by then: a Date, or seconds from now. Also sets the AMQP expiration. */
  readonly expires?: Date | number;
  readonly retries?: number;
  readonly rootId?: string;
  readonly parentId?: string | null;
  readonly replyTo?: string;
  readonly ignoreResult?: boolean;
  readonly priority?: number;
  readonly origin?: string;
  readonly now?: Date;
}

/**
 * The task header carrying where the task must read after (a PostgreSQL write location, `16/B374D848`):
 * set by the producer (ProducerOptions.writeLocation), applied by a worker given `readAfter`; other
 * Celery workers ignore it.
 */
export const WRITE_LOCATION_HEADER = "x-shopfds-write-location";

/** A message that cannot be run; `reason` says why (it goes with the message to the dead-letter queue). */
export class MalformedTaskError extends ShopfdsError {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "MalformedTaskError";
  }
}

/** ISO-8601 with an explicit offset, as Python's `datetime.isoformat()` writes it for UTC. */
export function isoWithOffset(d: Date): string {
  return d.toISOString().replace("Z", "").replace(/(\.\d{3})$/, "$1000") + "+00:00";
}

/** Celery's `utcoffset`: hours *west* of UTC, floor division (CELERY-NOTES §4.5). */
export function utcoffset(now = new Date()): number {
  return Math.floor(now.getTimezoneOffset() / 60);
}

let origin: string | undefined;
/** Celery's `origin` header: this process on this host (read once: os.hostname() is a system call, and it was one per task sent). */
export const defaultOrigin = (): string => (origin ??= `gen${process.pid}@${hostname()}`);

function pyString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  const body = s
    .replace(/\\/g, "\\\\")
    .replace(/\n/g, "\\n")
    .replace(/\r/g, "\\r")
    .replace(/\t/g, "\\t")
    .replace(new RegExp(quote, "g"), `\\${quote}`);
  return `${quote}${body}${quote}`;
}

/** Python's `repr` of a JSON value (None, True, 'text', [1, 2], {'k': 'v'}). */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : value > 0 ? "inf" : value < 0 ? "-inf" : "nan";
  if (typeof value === "string") return pyString(value);
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(", ")}]`;
  if (typeof value === "object") return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `${pyString(k)}: ${pyRepr(v)}`).join(", ")}}`;
  return pyString(String(value));
}

/** The repr of an args tuple: `()`, `(7,)`, `(2, 3)`. */
export function pyArgsRepr(args: readonly unknown[]): string {
  return args.length === 1 ? `(${pyRepr(args[0])},)` : `(${args.map(pyRepr).join(", ")})`;
}

const TASK_NAME = /^[A-Za-z_][\w.:-]{0,199}$/;

export function buildTaskMessage(name: string, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>, o: BuildOptions = {}): TaskMessage {
  if (typeof name !== "string" || !TASK_NAME.test(name)) throw new TypeError(`task name: must be a dotted identifier such as shopfds.send_order_email (got ${JSON.stringify(name)})`);
  if (!Array.isArray(args)) throw new TypeError("args: must be an array");
  if (kwargs === null || typeof kwargs !== "object" || Array.isArray(kwargs)) throw new TypeError("kwargs: must be a plain object");
  if (o.countdown !== undefined && !(Number.isFinite(o.countdown) && o.countdown >= 0)) throw new TypeError(`countdown: must be a non-negative number of seconds (got ${o.countdown})`);
  const now = o.now ?? new Date();
  const id = o.id ?? randomUUID();
  const eta = o.eta ?? (o.countdown !== undefined ? new Date(now.getTime() + o.countdown * 1000) : undefined);
  const expires = typeof o.expires === "number" ? new Date(now.getTime() + o.expires * 1000) : o.expires;
  const headers: TaskHeaders = {
    lang: "py",
    task: name,
    id,
    shadow: null,
    eta: eta ? isoWithOffset(eta) : null,
    expires: expires ? isoWithOffset(expires) : null,
    group: null,
    group_index: null,
    retries: o.retries ?? 0,
    timelimit: [null, null],
    root_id: o.rootId ?? id,
    parent_id: o.parentId ?? null,
    argsrepr: pyArgsRepr(args),
    kwargsrepr: pyRepr(kwargs),
    origin: o.origin ?? defaultOrigin(),
    ignore_result: o.ignoreResult ?? false,
  };
  return {
    headers,
    args: [...args],
    kwargs: { ...kwargs },
    embed: { ...EMBED },
    properties: {
      correlationId: id,
      ...(o.replyTo ? { replyTo: o.replyTo } : {}),
      priority: o.priority ?? 0,
      ...(expires ? { expiration: String(Math.max(0, expires.getTime() - now.getTime())) } : {}),
    },
  };
}

/** The AMQP publish options and body for a task message (content type and encoding as Celery needs). */
export function encodeTaskMessage(m: TaskMessage): { body: Buffer; options: Record<string, unknown> } {
  return {
    body: Buffer.from(JSON.stringify([m.args, m.kwargs, m.embed])),
    options: { contentType: "application/json", contentEncoding: "utf-8", deliveryMode: 2, headers: m.headers, ...m.properties },
  };
}

interface Delivered {
  content: Buffer;
  properties: { contentType?: string; headers?: Record<string, unknown>; correlationId?: string; replyTo?: string };
}

/** Reads a delivered task message strictly; throws MalformedTaskError naming what is wrong. */
export function parseTaskMessage(msg: Delivered): TaskMessage {
  const h = (msg.properties.headers ?? {}) as Record<string, unknown>;
  if (msg.properties.contentType !== "application/json") throw new MalformedTaskError(`content_type must be application/json (got ${JSON.stringify(msg.properties.contentType ?? null)})`);
  if (typeof h.task !== "string" || h.task === "") throw new MalformedTaskError("header task: must name the task (protocol v2)");
  if (typeof h.id !== "string" || h.id === "") throw new MalformedTaskError("header id: must be the task id");
  let body: unknown;
  try {
    body = JSON.parse(msg.content.toString("utf8"));
  } catch (e) {
    throw new MalformedTaskError(`body is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(body) || body.length !== 3) throw new MalformedTaskError(`body must be [args, kwargs, embed] (got ${Array.isArray(body) ? `an array of ${body.length}` : typeof body})`);
  const [args, kwargs, embed] = body as [unknown, unknown, unknown];
  if (!Array.isArray(args)) throw new MalformedTaskError("body[0] (args) must be an array");
  if (kwargs === null || typeof kwargs !== "object" || Array.isArray(kwargs)) throw new MalformedTaskError("body[1] (kwargs) must be an object");
  if (embed !== null && (typeof embed !== "object" || Array.isArray(embed))) throw new MalformedTaskError("body[2] (embed) must be an object");
  const headers: TaskHeaders = {
    lang: "py",
    shadow: null,
    eta: null,
    expires: null,
    group: null,
    group_index: null,
    timelimit: [null, null],
    parent_id: null,
    origin: "",
    ignore_result: false,
    ...h,
    // A sender's own reprs as sent (Celery always sends them); built only when a sender left them out.
    argsrepr: typeof h.argsrepr === "string" ? h.argsrepr : pyArgsRepr(args),
    kwargsrepr: typeof h.kwargsrepr === "string" ? h.kwargsrepr : pyRepr(kwargs),
    task: h.task,
    id: h.id,
    retries: typeof h.retries === "number" && h.retries >= 0 ? h.retries : 0,
    root_id: typeof h.root_id === "string" ? h.root_id : h.id,
  };
  return {
    headers,
    args,
    kwargs: kwargs as Record<string, unknown>,
    embed: (embed ?? {}) as Record<string, unknown>,
    properties: { correlationId: msg.properties.correlationId ?? h.id, ...(msg.properties.replyTo ? { replyTo: msg.properties.replyTo } : {}), priority: 0 },
  };
}

/** Parses an ISO eta/expires header; an offset-less time is read as UTC. */
export function parseTime(value: unknown): Date | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export type ResultStatus = "SUCCESS" | "FAILURE" | "RETRY" | "REVOKED";

/** A result for the `rpc://` backend (published to the caller's reply queue). */
export function resultBody(taskId: string, status: ResultStatus, result: unknown, traceback: string | null = null): Buffer {
  return Buffer.from(JSON.stringify({ task_id: taskId, status, result: result === undefined ? null : result, traceback, children: [] }));
}

/** How Celery describes an exception in a result, so a Python caller re-raises it. */
export function exceptionInfo(error: unknown): { exc_type: string; exc_message: string[]; exc_module: string | null } {
  const e = error instanceof Error ? error : new Error(String(error));
  return { exc_type: e.name || "Error", exc_message: [e.message], exc_module: null };
}
