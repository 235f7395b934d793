/**
 * Changing a queue's arguments (e.g. making `celery` a priority queue, `x-max-priority`), which RabbitMQ
 * cannot do in place: a declaration with other arguments fails with 406 PRECONDITION_FAILED, and
 * policies cannot set `x-max-priority`. So the queue is emptied into a holding queue, deleted,
 * declared again with the new arguments and its bindings, and refilled — every message moved with the
 * broker's publish confirm before its original is acknowledged (moved twice at worst, never lost), its
 * properties and headers kept, in the order it was queued.
 *
 * Run it with the queue's consumers stopped (it refuses while the queue has one: a worker would take
 * messages mid-move and re-declare the old queue). Producers may go on: publishes through the default
 * exchange in the instant between the delete and the re-declaration are unroutable (the runtime's
 * producer publishes mandatory and reports them); the delete is `ifEmpty`, so a message published
 * during the move is moved on the next pass. Rerunning after a crash resumes: a holding queue left
 * behind is drained into the re-declared queue. Hand-written because no library does this for AMQP 0-9-1
 * (the shovel plugin moves messages but does not re-declare the queue).
 */
import type { ChannelModel, ConfirmChannel, GetMessage } from "amqplib";
import { EMAIL_QUEUE, TASK_EXCHANGE, TASK_QUEUE, TASK_QUEUE_ARGUMENTS } from "./topology";

export interface QueueMigration {
  readonly queue: string;
  /** The arguments the queue must have. */
  readonly arguments: Readonly<Record<string, unknown>>;
  /** Bindings to restore (deleting a queue deletes its bindings); the default exchange's is implicit. */
  readonly bindings?: readonly { readonly exchange: string; readonly routingKey: string }[];
  /** One line per step. */
  readonly log?: (line: string) => void;
}

export interface QueueMigrationResult {
  /** false: the queue already had the arguments (nothing was done). */
  readonly migrated: boolean;
  /** Messages moved out and back in. */
  readonly moved: number;
}

export class QueueMigrationError extends Error {}

const isPreconditionFailed = (e: unknown) => (e as { code?: number }).code === 406;

/** Does the queue exist with exactly these arguments? (false: other arguments; undefined: no queue) */
async function hasArguments(connection: ChannelModel, queue: string, args: Readonly<Record<string, unknown>>): Promise<boolean | undefined> {
  if (!(await inspect(connection, queue))) return undefined;
  // Declaring with other arguments than the queue's is refused (406) and closes the channel: its own.
  const declare = await connection.createChannel();
  declare.on("error", () => undefined);
  try {
    await declare.assertQueue(queue, { durable: true, arguments: { ...args } });
    return true;
  } catch (error) {
    if (isPreconditionFailed(error)) return false;
    throw error;
  } finally {
    await declare.close().catch(() => undefined);
  }
}

/** Moves every message from one queue to another, each confirmed before its original is acknowledged. */
async function moveAll(channel: ConfirmChannel, from: string, to: string): Promise<number> {
  let moved = 0;
  for (;;) {
    const batch: GetMessage[] = [];
    for (let m: GetMessage | false; batch.length < 500 && (m = await channel.get(from, { noAck: false })); ) batch.push(m);
    if (batch.length === 0) return moved;
    for (const m of batch) {
      const p = m.properties;
      channel.sendToQueue(to, m.content, {
        ...(p.contentType ? { contentType: p.contentType } : {}),
        ...(p.contentEncoding ? { contentEncoding: p.contentEncoding } : {}),
        ...(p.headers ? { headers: p.headers } : {}),
        ...(p.deliveryMode ? { deliveryMode: p.deliveryMode } : {}),
        ...(p.priority !== undefined ? { priority: p.priority } : {}),
        ...(p.correlationId ? { correlationId: p.correlationId } : {}),
        ...(p.replyTo ? { replyTo: p.replyTo } : {}),
        ...(p.expiration !== undefined ? { expiration: p.expiration } : {}),
        ...(p.messageId ? { messageId: p.messageId } : {}),
        ...(p.timestamp !== undefined ? { timestamp: p.timestamp } : {}),
        ...(p.type ? { type: p.type } : {}),
        ...(p.appId ? { appId: p.appId } : {}),
      });
    }
    await channel.waitForConfirms();
    channel.ack(batch[batch.length - 1]!, true);
    moved += batch.length;
  }
}

/** The queue's counts, or undefined when there is no such queue (on a channel of its own: a 404 closes it). */
async function inspect(connection: ChannelModel, queue: string): Promise<{ messageCount: number; consumerCount: number } | undefined> {
  const channel = await connection.createChannel();
  channel.on("error", () => undefined);
  try {
    return await channel.checkQueue(queue);
  } catch {
    return undefined;
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/** Gives `queue` the arguments `m.arguments`, keeping its messages (see the module's comment). */
export async function migrateQueueArguments(connection: ChannelModel, m: QueueMigration): Promise<QueueMigrationResult> {
  const log = m.log ?? (() => undefined);
  const holding = `${m.queue}.migrating`;
  const state = await hasArguments(connection, m.queue, m.arguments);
  const held = await inspect(connection, holding);
  if (state === true && !held) {
    log(`${m.queue}: already declared with ${JSON.stringify(m.arguments)}; nothing to do`);
    return { migrated: false, moved: 0 };
  }
  const work = await connection.createConfirmChannel();
  work.on("error", () => undefined);
  let moved = 0;
  try {
    if (state === false) {
      const { consumerCount, messageCount } = (await inspect(connection, m.queue))!;
      if (consumerCount > 0) throw new QueueMigrationError(`${m.queue}: ${consumerCount} consumer(s) attached; stop the workers consuming it first`);
      await work.assertQueue(holding, { durable: true });
      log(`${m.queue}: moving ${messageCount} message(s) to ${holding}`);
      moved = await moveAll(work, m.queue, holding);
      try {
        await work.deleteQueue(m.queue, { ifEmpty: true });
      } catch (error) {
        if (!isPreconditionFailed(error)) throw error;
        // A message arrived after the last pass (the refused delete closed the channel): go again.
        log(`${m.queue}: a message arrived during the move; another pass`);
        const again = await migrateQueueArguments(connection, m);
        return { migrated: true, moved: moved + again.moved };
      }
    }
    await work.assertQueue(m.queue, { durable: true, arguments: { ...m.arguments } });
    for (const b of m.bindings ?? []) await work.bindQueue(m.queue, b.exchange, b.routingKey);
    log(`${m.queue}: declared with ${JSON.stringify(m.arguments)}; moving the held messages back`);
    const back = await moveAll(work, holding, m.queue);
    await work.deleteQueue(holding, { ifEmpty: true });
    log(`${m.queue}: done (${back} message(s) moved back)`);
    return { migrated: true, moved: Math.max(moved, back) };
  } finally {
    await work.close().catch(() => undefined);
  }
}

/**
 * The runtime's task queues (`celery`, bound to the `celery` exchange, and `shopfds.email`) given the
 * task queue arguments of this version (`shopfds-runtime queues migrate`); a queue that does not exist
 * yet is left for its first declaration.
 */
export async function migrateTaskQueues(connection: ChannelModel, log?: (line: string) => void): Promise<QueueMigrationResult[]> {
  const results: QueueMigrationResult[] = [];
  for (const [queue, bindings] of [
    [TASK_QUEUE, [{ exchange: TASK_EXCHANGE, routingKey: TASK_QUEUE }]],
    [EMAIL_QUEUE, []],
  ] as const) {
    if (!(await inspect(connection, queue)) && !(await inspect(connection, `${queue}.migrating`))) {
      log?.(`${queue}: not declared yet; it will be declared with the new arguments`);
      results.push({ migrated: false, moved: 0 });
      continue;
    }
    results.push(await migrateQueueArguments(connection, { queue, arguments: TASK_QUEUE_ARGUMENTS, bindings, ...(log ? { log } : {}) }));
  }
  return results;
}
