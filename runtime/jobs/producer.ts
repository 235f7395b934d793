/**
 * Sends Celery tasks (protocol v2) to RabbitMQ, for TypeScript and Python workers alike.
 *
 * - Durable: publishes on a confirm channel with `mandatory`, so `send` resolves only once the broker
 *   has the message in a queue; a message that no queue takes is an error, never silently dropped.
 * - Results: `send(…).result()` waits for the `rpc://` reply on this producer's own reply queue, as a
 *   Python caller's `AsyncResult.get()` does.
 */
import { randomUUID } from "node:crypto";
import amqp, { type ChannelModel, type ConfirmChannel, type ConsumeMessage } from "amqplib";
import { TASK_QUEUE } from "../../components/rabbitmq/render";
import { BuildOptions, buildTaskMessage, encodeTaskMessage } from "./protocol";

export interface SendOptions extends Omit<BuildOptions, "replyTo" | "origin" | "now"> {
  /** Queue to route to (through the default exchange). @default "celery" */
  readonly queue?: string;
}

export interface SentTask {
  readonly id: string;
  /** Resolves with the task's return value; rejects with TaskFailedError, or on timeout. */
  result(timeoutMs?: number): Promise<unknown>;
}

export class TaskFailedError extends Error {
  constructor(
    readonly taskId: string,
    readonly excType: string,
    message: string,
    readonly remoteTraceback: string | null,
  ) {
    super(`task ${taskId} failed: ${excType}: ${message}`);
    this.name = "TaskFailedError";
  }
}

interface Waiter {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export class TaskProducer {
  private readonly replyQueue = randomUUID();
  private replyConsumer?: Promise<void>;
  private readonly waiting = new Map<string, Waiter>();
  private readonly early = new Map<string, { status: string; result: unknown; traceback: string | null }>();
  private readonly returned = new Map<string, (error: Error) => void>();

  private constructor(
    private readonly connection: ChannelModel,
    private readonly channel: ConfirmChannel,
  ) {
    channel.on("return", (msg: ConsumeMessage) => {
      const id = msg.properties.correlationId as string;
      this.returned.get(id)?.(new Error(`task ${id}: no queue named "${msg.fields.routingKey}" took the message (is the broker's definition loaded?)`));
    });
    channel.on("error", () => undefined);
    connection.on("error", () => undefined);
  }

  static async connect(url: string): Promise<TaskProducer> {
    const connection = await amqp.connect(url, { clientProperties: { connection_name: "shopfds-producer" } });
    const channel = await connection.createConfirmChannel();
    const producer = new TaskProducer(connection, channel);
    // The reply queue must exist before the first task is sent, or a fast result would be lost.
    await producer.consumeReplies();
    return producer;
  }

  /** Publishes a task and resolves once the broker has confirmed it into a queue. */
  async send(name: string, args: readonly unknown[] = [], kwargs: Readonly<Record<string, unknown>> = {}, options: SendOptions = {}): Promise<SentTask> {
    const message = buildTaskMessage(name, args, kwargs, { ...options, replyTo: this.replyQueue });
    const { body, options: publishOptions } = encodeTaskMessage(message);
    const id = message.headers.id;
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      this.returned.set(id, (error) => {
        failed = true;
        reject(error);
      });
      this.channel.publish("", options.queue ?? TASK_QUEUE, body, { ...publishOptions, mandatory: true }, (error) => {
        this.returned.delete(id);
        if (failed) return;
        if (error) reject(new Error(`task ${id}: the broker refused it: ${error}`));
        else resolve();
      });
    });
    return { id, result: (timeoutMs = 30_000) => this.result(id, timeoutMs) };
  }

  /** Waits for a task's final result (SUCCESS or FAILURE; RETRY only updates the state). */
  async result(id: string, timeoutMs = 30_000): Promise<unknown> {
    await this.consumeReplies();
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
    await this.connection.close().catch(() => undefined);
  }

  private settle(id: string, reply: { status: string; result: unknown; traceback: string | null }): unknown {
    if (reply.status === "SUCCESS") return reply.result;
    const r = (reply.result ?? {}) as { exc_type?: string; exc_message?: unknown };
    const message = Array.isArray(r.exc_message) ? r.exc_message.join(", ") : String(r.exc_message ?? reply.status);
    throw new TaskFailedError(id, r.exc_type ?? reply.status, message, reply.traceback);
  }

  private consumeReplies(): Promise<void> {
    this.replyConsumer ??= (async () => {
      // As Celery's rpc backend declares it: non-durable, auto-delete, expiring after a day unused.
      await this.channel.assertQueue(this.replyQueue, { durable: false, autoDelete: true, arguments: { "x-expires": 86_400_000 } });
      await this.channel.consume(
        this.replyQueue,
        (msg) => {
          if (!msg) return;
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
            return;
          }
          this.waiting.delete(id);
          try {
            waiter.resolve(this.settle(id, reply));
          } catch (error) {
            waiter.reject(error as Error);
          }
        },
        { noAck: true },
      );
    })();
    return this.replyConsumer;
  }
}
