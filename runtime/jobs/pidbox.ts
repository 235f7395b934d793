/**
 * A worker's pidbox: the queue `<hostname>.celery.pidbox` bound to the `celery.pidbox` fanout, where
 * `celery inspect`/`control` and Flower broadcast commands, and the replies on `reply.celery.pidbox`.
 * What each command does is remote-control.ts; this is the wiring, declared as Celery declares it.
 */
import type { ConfirmChannel, ConsumeMessage } from "amqplib";
import { typedTable } from "./amqp-table";
import { controlReply, NO_REPLY, type ControlTarget } from "./remote-control";
import { PIDBOX_EXCHANGE, REPLY_EXCHANGE } from "./topology";

export interface PidboxOptions {
  readonly target: ControlTarget;
  /** The channel to answer on once it is open (a command may cost the channel it came on). */
  readonly replyChannel: () => Promise<ConfirmChannel | undefined>;
  readonly log: (line: string) => void;
}

/** Declares the pidbox on `channel` and answers every command that asks for a reply. */
export async function startPidbox(channel: ConfirmChannel, o: PidboxOptions): Promise<void> {
  await channel.assertExchange(PIDBOX_EXCHANGE, "fanout", { durable: false });
  await channel.assertExchange(REPLY_EXCHANGE, "direct", { durable: false });
  const queue = `${o.target.hostname}.celery.pidbox`;
  await channel.assertQueue(queue, { durable: false, autoDelete: true, arguments: { "x-message-ttl": 300_000, "x-expires": 10_000 } });
  await channel.bindQueue(queue, PIDBOX_EXCHANGE, "");
  await channel.consume(queue, (m) => m && onControl(m, o), { noAck: true });
}

/** Never throws: a malformed broadcast (bad JSON, an invalid pattern) is logged and ignored. */
function onControl(msg: ConsumeMessage, o: PidboxOptions): void {
  void controlReply(o.target, msg)
    .then(async (reply) => {
      if (!reply || reply.result === NO_REPLY) return;
      const channel = await o.replyChannel();
      channel?.publish(reply.exchange, reply.routingKey, Buffer.from(JSON.stringify({ [o.target.hostname]: reply.result })), {
        contentType: "application/json",
        contentEncoding: "utf-8",
        deliveryMode: 1,
        priority: 0,
        headers: typedTable({ ticket: reply.ticket, clock: o.target.clock }),
      });
    })
    .catch((e: Error) => o.log(`control message ignored: ${e.message}`));
}
