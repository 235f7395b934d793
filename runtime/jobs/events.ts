/**
 * A worker's Celery events: the Lamport clock Celery's tooling orders them by, and their publication on
 * the `celeryev` topic exchange (routing key: the type with dots), as Celery's EventDispatcher does.
 * Flower and `celery events` read these. Events are fire-and-forget (non-persistent, as Celery's); a
 * lost connection drops them until the worker's channel is back.
 */
import type { ConfirmChannel } from "amqplib";
import { typedTable } from "./amqp-table";
import { utcoffset } from "./protocol";
import { EVENT_EXCHANGE } from "./topology";

/** What a worker says it is, in its worker-* events (Flower shows it). */
export const WORKER_SOFTWARE = { sw_ident: "shopfds-ts-celery", sw_ver: "1.1.0", sw_sys: "Linux" } as const;

export class EventDispatcher {
  /** The Lamport clock: one tick per event sent, merged with a remote clock on each control message. */
  clock = 0;
  /** Whether `task-*` events are sent (Celery's `task` group: `-E`, `enable_events`); worker events always are. */
  taskEvents = false;
  /** The broker blocks the publishing connection (a resource alarm): events are dropped, counted, until it lifts. */
  paused = false;
  private droppedWhilePaused = 0;
  private channel?: ConfirmChannel;

  constructor(
    private readonly hostname: string,
    private readonly log: (line: string) => void,
  ) {}

  /** Declares the exchange on a new connection's events channel and publishes there from now on. */
  async attach(channel: ConfirmChannel): Promise<void> {
    await channel.assertExchange(EVENT_EXCHANGE, "topic", { durable: true });
    this.channel = channel;
  }

  /** The connection is gone: nothing is published until `attach` is called again. */
  detach(): void {
    this.channel = undefined;
  }

  /** Merges a clock received from another node (Lamport: the larger one, plus one). */
  merge(remote: number): void {
    this.clock = Number.isFinite(remote) ? Math.max(this.clock, remote) + 1 : this.clock + 1;
  }

  /**
   * Publishes one event (a `task-*` one only while task events are on); never throws (an event not sent
   * is logged). `fields` may be a function, called only when the event is sent: a task's result repr is
   * not built for an event nobody asked for.
   */
  emit(type: string, fields: Record<string, unknown> | (() => Record<string, unknown>)): void {
    if (!this.taskEvents && type.startsWith("task-")) return;
    this.clock++;
    if (this.paused) {
      // Written now they would wait in memory for the alarm to clear: Celery's events are best effort.
      if (this.droppedWhilePaused++ === 0) this.log(`events dropped while the broker blocks publishing (first: ${type})`);
      return;
    } else if (this.droppedWhilePaused > 0) {
      this.log(`${this.droppedWhilePaused} event(s) dropped while the broker blocked publishing`);
      this.droppedWhilePaused = 0;
    }
    const event = { hostname: this.hostname, utcoffset: utcoffset(), pid: process.pid, clock: this.clock, ...(typeof fields === "function" ? fields() : fields), timestamp: Date.now() / 1000, type };
    try {
      this.channel?.publish(EVENT_EXCHANGE, type.replace(/-/g, "."), Buffer.from(JSON.stringify(event)), {
        contentType: "application/json",
        contentEncoding: "utf-8",
        deliveryMode: 1,
        headers: typedTable({ hostname: this.hostname }),
      });
    } catch (e) {
      this.log(`event ${type} not sent: ${(e as Error).message}`);
    }
  }

  /** Waits until the broker has taken every event sent so far (before a graceful stop closes the connection). */
  async flush(): Promise<void> {
    await this.channel?.waitForConfirms().catch(() => undefined);
  }
}
