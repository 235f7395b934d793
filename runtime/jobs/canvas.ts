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
 * Chords, with a result store (results.ts, Celery's database backend): a header task (its `group`
 * header, the body in `embed.chord`) records its outcome; `celery.chord_unlock`, sent by whoever sent
 * the chord to the body's queue, polls the store for the header's ids (`chordUnlock`) and sends the
 * body with the header's results, in header order, as its first argument, or, when a header task
 * failed, records the body as failed with a ChordError and sends the body's `link_error` errbacks
 * (celery/app/builtins.py, unlock_chord). Without a store, a message carrying a chord is refused with a
 * reason (`unsupportedCanvas`) rather than half-done.
 */
import { buildTaskMessage, encodeTaskMessage, pyRepr, type TaskMessage } from "./protocol";
import type { RecordedOutcome, TaskResults } from "./results";

/** Celery's built-in task that waits for a chord's header and then sends its body. */
export const CHORD_UNLOCK = "celery.chord_unlock";

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

export const isSignature = (v: unknown): v is Signature => v !== null && typeof v === "object" && typeof (v as Signature).task === "string";
const signatures = (v: unknown): Signature[] => (Array.isArray(v) ? v.filter(isSignature) : []);

/** Why the worker cannot honour this message's canvas, or undefined when it can (`chords`: it has a result store). */
export function unsupportedCanvas(embed: Readonly<Record<string, unknown>>, chords = false): string | undefined {
  if (embed.chord !== null && embed.chord !== undefined) {
    if (!chords) return "a chord (embed.chord): this worker has no result store to count the chord's header in (WorkerOptions.results)";
    if (!isSignature(embed.chord)) return "embed.chord: must be a task signature";
  }
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

/** A signature option that names something (a task id, a queue): a non-empty string, else undefined. */
export const optionString = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/** A signature's arguments when it runs after another: `prepend` (the result) first, unless immutable (Celery's `si()`). */
export const argsAfter = (sig: Signature, prepend: readonly unknown[]): unknown[] => (sig.immutable ? [...(sig.args ?? [])] : [...prepend, ...(sig.args ?? [])]);

/** The message for one step: `prepend` before its args (unless immutable), the finished task as parent. */
function step(sig: Signature, prepend: readonly unknown[], finished: TaskMessage, routes: Readonly<Record<string, string>>, defaultQueue: string, chain: readonly Signature[] | null): FollowUp {
  const o = sig.options ?? {};
  const str = optionString;
  const message = buildTaskMessage(sig.task, argsAfter(sig, prepend), sig.kwargs ?? {}, {
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

/** What `celery.chord_unlock` does now: wait and look again, send the body, or fail the chord. */
export type ChordStep =
  | { readonly kind: "wait"; readonly intervalSeconds: number }
  | { readonly kind: "body"; readonly bodyId: string; readonly followUp: FollowUp }
  | { readonly kind: "error"; readonly bodyId: string | undefined; readonly reason: string; readonly followUps: FollowUp[] };

/** Python's repr of a recorded exception (`ValueError('py_fail(5)')`), as Celery's ChordError names it. */
function exceptionRepr(o: RecordedOutcome): string {
  const r = o.result as { exc_type?: unknown; exc_message?: unknown } | null;
  if (!r || typeof r.exc_type !== "string") return o.status;
  const args = Array.isArray(r.exc_message) ? r.exc_message : [r.exc_message];
  return `${r.exc_type}(${args.map((a) => pyRepr(a)).join(", ")})`;
}

/**
 * One run of `celery.chord_unlock` (args `[group_id, body]`, kwargs `{interval, max_retries, result}`
 * with `result` the header's `[[id, parent], children]` tuples): the header's outcomes from `results`
 * decide. Nested groups in the header and a chain or group as the body are refused with a reason.
 */
export async function chordUnlock(unlock: TaskMessage, results: TaskResults, routes: Readonly<Record<string, string>> = {}, defaultQueue = "celery"): Promise<ChordStep> {
  const [groupId, body] = unlock.args;
  const kw = unlock.kwargs as { interval?: unknown; max_retries?: unknown; result?: unknown };
  const fail = (reason: string, sig?: Signature): ChordStep => {
    const bodyId = typeof sig?.options?.task_id === "string" ? sig.options.task_id : undefined;
    const errbacks = sig && bodyId ? signatures(sig.options?.link_error).map((eb) => step(eb, [bodyId], unlock, routes, defaultQueue, null)) : [];
    return { kind: "error", bodyId, reason, followUps: errbacks };
  };
  if (typeof groupId !== "string" || !isSignature(body)) return fail("celery.chord_unlock: args must be [group_id, body signature]");
  if (body.subtask_type) return fail(`the chord's body is a ${body.subtask_type}: this worker sends a single task as a chord's body`, body);
  const tuples = Array.isArray(kw.result) ? kw.result : [];
  const ids = tuples.map((t) => (Array.isArray(t) && Array.isArray(t[0]) && typeof t[0][0] === "string" && (t[1] === null || t[1] === undefined) ? (t[0][0] as string) : undefined));
  if (!Array.isArray(kw.result) || ids.some((id) => id === undefined)) return fail("celery.chord_unlock: kwargs.result must list the header's tasks ([[id, parent], null] each; a nested group is not run)", body);
  const found = await results.lookup(ids as string[]);
  for (const id of ids as string[]) {
    const o = found.get(id);
    if (o && (o.status === "FAILURE" || o.status === "REVOKED")) return fail(`Dependency ${id} raised ${exceptionRepr(o)}`, body);
    if (o?.status === "SUCCESS" && o.unreadable) return fail(`the result of ${id} cannot be read: ${o.unreadable}`, body);
  }
  if ((ids as string[]).some((id) => found.get(id)?.status !== "SUCCESS")) {
    if (typeof kw.max_retries === "number" && unlock.headers.retries >= kw.max_retries) return fail(`the chord's header did not finish within ${kw.max_retries} checks`, body);
    return { kind: "wait", intervalSeconds: typeof kw.interval === "number" && kw.interval > 0 ? kw.interval : 1 };
  }
  const values = (ids as string[]).map((id) => found.get(id)!.result);
  try {
    const followUp = step(body, [values], unlock, routes, defaultQueue, null);
    return { kind: "body", bodyId: followUp.id, followUp };
  } catch (e) {
    return fail(`the header's results cannot be sent to the body: ${(e as Error).message}`, body);
  }
}
