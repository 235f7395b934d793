/**
 * One broker connection that heals itself: amqplib's connection recovery (reconnect with exponential
 * back-off and jitter) plus a rule amqplib leaves to us: a *channel* lost on a live connection (a
 * channel error, a consumer cancelled by the broker) drops the whole connection, so that the owner's
 * `setup` (channels, declarations, consumers) runs again from the start on the next connection. One code
 * path recovers from every loss: broker restart, network cut, channel error.
 *
 * While down, `connected` is false: producers refuse at once (a request answers 503 instead of hanging)
 * and workers stop reporting liveness.
 */
import amqp, { type Channel, type ChannelModel, type RecoveringChannelModel } from "amqplib";
import { UnavailableError } from "../errors";
import { type ServerTls, verifiedTls } from "../tls";

export interface BrokerLinkOptions {
  readonly url: string;
  /** AMQPS: verify the broker against this CA (the contract's `rabbitmq.tls`); the URL is then amqps://. */
  readonly tls?: ServerTls;
  /** Shown in the management UI (connection_name). */
  readonly name: string;
  /**
   * Creates channels, declares topology and starts consumers; runs after every (re)connect. Pass each
   * long-lived channel to `watch`: its errors are logged and its loss drops the connection.
   */
  readonly setup: (connection: ChannelModel, watch: (channel: Channel, what: string) => void) => Promise<void>;
  /** Told of a lost connection (running work must not ack on the old channels). */
  readonly onDown?: (reason: string) => void;
  /** Told once a connection is set up again. */
  readonly onUp?: () => void;
  /** Told when the broker blocks this connection (`connection.blocked`: a memory or disk alarm) and when it lifts it. */
  readonly onBlocked?: (reason: string) => void;
  readonly onUnblocked?: () => void;
  readonly log?: (line: string) => void;
  /** AMQP heartbeat in seconds: a broker that stops answering is noticed within about twice this. @default 10 */
  readonly heartbeatSeconds?: number;
  /** Longest wait between reconnect attempts. @default 2000 */
  readonly maxReconnectDelayMs?: number;
}

/** The broker cannot take the message now (the link is down or reconnecting). */
export class BrokerUnavailableError extends UnavailableError {}

/**
 * The broker has blocked this connection (a resource alarm: memory or disk watermark) and reads nothing
 * from it until the alarm clears; a publish now would wait that long.
 */
export class BrokerBlockedError extends BrokerUnavailableError {
  override readonly code = "BROKER_BLOCKED";
  override readonly publicMessage = "the task broker is refusing new messages for now (a resource alarm); retry shortly";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, retryAfterSeconds: 10 });
  }
}

function withHeartbeat(url: string, seconds: number): string {
  const u = new URL(url);
  if (!u.searchParams.has("heartbeat")) u.searchParams.set("heartbeat", String(seconds));
  return u.toString();
}

export class BrokerLink {
  private current?: ChannelModel;
  private closing = false;
  private blockedBy?: { reason: string; since: number };

  private constructor(
    private readonly recovering: RecoveringChannelModel,
    private readonly log: (line: string) => void,
  ) {}

  /** Connects (the first attempt must succeed: a wrong URL fails start-up) and keeps reconnecting after. */
  static async open(o: BrokerLinkOptions): Promise<BrokerLink> {
    const log = o.log ?? (() => undefined);
    let link: BrokerLink | undefined;
    let pending: ChannelModel | undefined;
    const tls = verifiedTls("rabbitmq.tls", o.tls);
    if (tls && !o.url.startsWith("amqps://")) throw new Error("rabbitmq.url: must be amqps:// when rabbitmq.tls is set");
    const recovering = await amqp.connect(withHeartbeat(o.url, o.heartbeatSeconds ?? 10), {
      ...tls,
      clientProperties: { connection_name: o.name },
      timeout: 5000,
      recovery: {
        initialDelay: 200,
        maxDelay: o.maxReconnectDelayMs ?? 2000,
        initialMaxRetries: 0,
        maxRetries: Infinity,
        setup: async (connection: ChannelModel) => {
          connection.on("error", (e: Error) => log(`connection error: ${e.message}`));
          // RabbitMQ (3.10, rabbit_reader) tells a connection it is blocked when it publishes during an
          // alarm; from then on it reads nothing from the socket (acks, publishes) until the alarm clears.
          // A connection that only consumes stays unblocked and keeps acknowledging.
          connection.on("blocked", (reason: string) => {
            if (!link || link.current !== connection) return;
            link.blockedBy = { reason: String(reason), since: Date.now() };
            log(`the broker blocked this connection: ${reason}`);
            o.onBlocked?.(String(reason));
          });
          connection.on("unblocked", () => {
            if (!link || link.current !== connection || !link.blockedBy) return;
            log(`the broker unblocked this connection after ${Date.now() - link.blockedBy.since} ms`);
            link.blockedBy = undefined;
            o.onUnblocked?.();
          });
          const watch = (channel: Channel, what: string) => {
            channel.on("error", (e: Error) => log(`${what} channel error: ${e.message}`));
            // Lost on a live connection (an error, a broker-side close): rebuild everything on a new one.
            channel.on("close", () => {
              if (link?.current === connection) link.reset(`the ${what} channel closed`);
            });
          };
          await o.setup(connection, watch);
          if (link) link.current = connection;
          else pending = connection;
        },
      },
    });
    link = new BrokerLink(recovering, log);
    link.current = pending;
    recovering.on("disconnect", (e: Error) => {
      link.current = undefined;
      link.blockedBy = undefined;
      if (link.closing) return;
      log(`broker connection lost: ${e.message}; reconnecting`);
      o.onDown?.(e.message);
    });
    recovering.on("connect", () => {
      log("broker connection (re)established");
      o.onUp?.();
    });
    recovering.on("connect-failed", (e: Error) => log(`reconnect failed: ${e.message}`));
    recovering.on("error", () => undefined);
    return link;
  }

  /** A live, set-up connection exists now. */
  get connected(): boolean {
    return this.current !== undefined;
  }

  /** Why and since when the broker blocks the live connection (a resource alarm), or undefined. */
  get blocked(): { readonly reason: string; readonly since: number } | undefined {
    return this.blockedBy;
  }

  /** The live connection, or a BrokerUnavailableError naming the problem. */
  connection(): ChannelModel {
    if (!this.current) throw new BrokerUnavailableError("RabbitMQ is not reachable now (reconnecting)");
    return this.current;
  }

  /** Drops the connection so recovery rebuilds everything (watched channels do it by themselves). */
  reset(reason: string): void {
    const c = this.current;
    if (!c || this.closing) return;
    this.log(`resetting the broker connection: ${reason}`);
    this.current = undefined;
    void c.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.current = undefined;
    await this.recovering.close().catch(() => undefined);
  }
}
