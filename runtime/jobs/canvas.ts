/**
 * Celery's canvas as it travels in a protocol-v2 message's `embed` (`[args, kwargs, embed]`), for the
 * parts a worker acts on: `callbacks` (`link`), `errbacks` (`link_error`) and `chain` (the tasks still to
 * run, last first). A signature is Celery's dict form of a task call:
 * `{ task, args, kwargs, options, subtask_type, immutable, chord_size }` (celery/canvas.py, Signature).
 *
 * What a Celery 5 worker does, and the TypeScript worker does alike (celery/app/trace.py):
 * - success: the next chain step (`chain.pop()`) is sent with the result prepended to its args (unless
 *   the signature is immutable) and the rest of the chain; every `link` callback likewise;
 * - failure for good: every `link_error` errback is sent with the failed task's id as its first argument
 *   (Celery's call for an errback it does not run in-process);
 * - each sent step has the finished task as parent and keeps the root.
 * Chords (`embed.chord`, a group's header counted down in a result backend) are not run: a message
 * carrying one is refused with a reason (`unsupportedCanvas`) rather than half-done.
 */
import { buildTaskMessage, encodeTaskMessage, type TaskMessage } from "./protocol";

/** A task call in Celery's signature form. */
export interface Signature {
  readonly task: string;
  readonly args?: readonly unknown[];
  readonly kwargs?: Readonly<Record<string, unknown>>;
  readonly options?: Readonly<Record<string, unknown>>;
  readonly subtask_type?: string | null;
  readonly immutable?: boolean;
  readonly chord_size?: number | null;
}

/** `signature("shop.add", [2])`: the dict Celery's `signature()`/`.s()` makes (options: queue, task_id, link…). */
export function signature(task: string, args: readonly unknown[] = [], kwargs: Readonly<Record<string, unknown>> = {}, options: Readonly<Record<string, unknown>> = {}, immutable = false): Signature {
  return { task, args: [...args], kwargs: { ...kwargs }, options: { ...options }, subtask_type: null, immutable, chord_size: null };
}

const isSignature = (v: unknown): v is Signature => v !== null && typeof v === "object" && typeof (v as Signature).task === "string";
const signatures = (v: unknown): Signature[] => (Array.isArray(v) ? v.filter(isSignature) : []);

/** Why the worker cannot honour this message's canvas, or undefined when it can. */
export function unsupportedCanvas(embed: Readonly<Record<string, unknown>>): string | undefined {
  if (embed.chord !== null && embed.chord !== undefined) return "a chord (embed.chord): this worker runs links, errbacks and chains, not chords";
  for (const key of ["callbacks", "errbacks", "chain"] as const) {
    const v = embed[key];
    if (v !== null && v !== undefined && (!Array.isArray(v) || v.some((s) => !isSignature(s)))) return `embed.${key}: must be a list of task signatures`;
  }
  return undefined;
}

export interface FollowUp {
  /** Where it goes (the signature's queue or routing key, else the route of its task, else the default queue). */
  readonly queue: string;
  readonly body: Buffer;
  readonly options: Record<string, unknown>;
  readonly id: string;
  readonly task: string;
}

/** The message for one step: `prepend` before its args (unless immutable), the finished task as parent. */
function step(sig: Signature, prepend: readonly unknown[], finished: TaskMessage, routes: Readonly<Record<string, string>>, defaultQueue: string, chain: readonly Signature[] | null): FollowUp {
  const o = sig.options ?? {};
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const message = buildTaskMessage(sig.task, sig.immutable ? [...(sig.args ?? [])] : [...prepend, ...(sig.args ?? [])], sig.kwargs ?? {}, {
    ...(str(o.task_id) ? { id: str(o.task_id)! } : {}),
    parentId: finished.headers.id,
    rootId: finished.headers.root_id,
    ...(str(o.reply_to) ?? finished.properties.replyTo ? { replyTo: (str(o.reply_to) ?? finished.properties.replyTo)! } : {}),
    ...(typeof o.priority === "number" ? { priority: o.priority } : {}),
  });
  const withEmbed: TaskMessage = { ...message, embed: { callbacks: signatures(o.link).length ? signatures(o.link) : null, errbacks: signatures(o.link_error).length ? signatures(o.link_error) : null, chain: chain && chain.length ? [...chain] : null, chord: null } };
  const { body, options } = encodeTaskMessage(withEmbed);
  return { queue: str(o.queue) ?? str(o.routing_key) ?? routes[sig.task] ?? defaultQueue, body, options, id: message.headers.id, task: sig.task };
}

/** What a worker sends after `finished` succeeded with `result`: the next chain step, then the callbacks. */
export function onSuccess(finished: TaskMessage, result: unknown, routes: Readonly<Record<string, string>> = {}, defaultQueue = "celery"): FollowUp[] {
  const chain = signatures(finished.embed.chain);
  const next = chain.pop();
  return [...(next ? [step(next, [result], finished, routes, defaultQueue, chain)] : []), ...signatures(finished.embed.callbacks).map((cb) => step(cb, [result], finished, routes, defaultQueue, null))];
}

/** What a worker sends after `finished` failed for good: each errback, given the task id. */
export function onFailure(finished: TaskMessage, routes: Readonly<Record<string, string>> = {}, defaultQueue = "celery"): FollowUp[] {
  return signatures(finished.embed.errbacks).map((eb) => step(eb, [finished.headers.id], finished, routes, defaultQueue, null));
}
