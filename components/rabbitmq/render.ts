/**
 * Pure renderers for the RabbitMQ broker: rabbitmq.conf, the enabled-plugins file, and the definitions
 * file loaded at boot (vhost, users with hashed passwords and per-vhost permissions, exchanges, the
 * task queue with its dead-letter exchange and queue, policies). Docker, Kubernetes and the local stack
 * ship exactly these.
 *
 * The topology (queue, exchanges, dead-lettering) is the runtime's (runtime/jobs/topology.ts): the
 * broker declares what the producer and worker use.
 */
import { createHash, randomBytes } from "node:crypto";
import {
  DEAD_LETTER_EXCHANGE,
  DEAD_LETTER_QUEUE,
  DEAD_LETTER_ROUTING_KEY,
  EVENT_EXCHANGE,
  PIDBOX_EXCHANGE,
  REPLY_EXCHANGE,
  TASK_EXCHANGE,
  TASK_QUEUE,
  TASK_QUEUE_ARGUMENTS,
  EMAIL_QUEUE,
} from "../../runtime/jobs/topology";
import { isPort, isSafePath, Problems, RULES } from "../validation";

export { DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, DEAD_LETTER_ROUTING_KEY, EMAIL_QUEUE, TASK_QUEUE, TASK_QUEUE_ARGUMENTS };

/** The one vhost of every ShopFDS broker (Docker, Kubernetes and the local stack). */
export const RABBIT_VHOST = "shopfds";

export interface RabbitConfInput {
  readonly amqpPort: number;
  readonly managementPort: number;
  readonly prometheusPort: number;
  /** Address to listen on: `0.0.0.0` in a container, `127.0.0.1` locally. */
  readonly bindAddress: string;
  /** Absolute path of the definitions file (a secret: it holds password hashes). */
  readonly definitionsFile: string;
  /**
   * TLS only: AMQPS on `amqpPort`, no plain AMQP listener. Clients are verified by password, not by
   * certificate (verify_none on the server side; they verify the server).
   */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
}

export interface RabbitUser {
  readonly name: string;
  readonly password: string;
  /** `administrator`, `monitoring` (management API read access, for Flower), or none. */
  readonly tags: readonly ("administrator" | "monitoring")[];
}

export interface DefinitionsInput {
  readonly vhost: string;
  readonly users: readonly RabbitUser[];
  /** Salt per user for the password hash; random when absent (tests pass a fixed one). */
  readonly salt?: (user: string) => Buffer;
}

const isName = (s: unknown): s is string => typeof s === "string" && /^[a-z][a-z0-9_.-]{0,63}$/.test(s);

export function renderRabbitConf(input: RabbitConfInput): string {
  const p = new Problems("rabbitmq.conf");
  for (const key of ["amqpPort", "managementPort", "prometheusPort"] as const) p.rule(key, RULES.port, input[key]);
  p.check(new Set([input.amqpPort, input.managementPort, input.prometheusPort]).size === 3, "managementPort", "the three ports must differ", [input.amqpPort, input.managementPort, input.prometheusPort]);
  p.check(/^(\d{1,3}\.){3}\d{1,3}$/.test(input.bindAddress), "bindAddress", "must be an IPv4 address", input.bindAddress);
  p.check(isSafePath(input.definitionsFile), "definitionsFile", "must be an absolute path", input.definitionsFile);
  for (const key of ["certFile", "keyFile", "caFile"] as const) if (input.tls) p.check(isSafePath(input.tls[key]), `tls.${key}`, "must be an absolute path", input.tls[key]);
  p.throwIfAny();
  const listen = input.tls
    ? [
        "listeners.tcp = none",
        `listeners.ssl.1 = ${input.bindAddress}:${input.amqpPort}`,
        `ssl_options.cacertfile = ${input.tls.caFile}`,
        `ssl_options.certfile = ${input.tls.certFile}`,
        `ssl_options.keyfile = ${input.tls.keyFile}`,
        "ssl_options.verify = verify_none",
        "ssl_options.fail_if_no_peer_cert = false",
        "ssl_options.versions.1 = tlsv1.3",
        "ssl_options.versions.2 = tlsv1.2",
      ]
    : [`listeners.tcp.1 = ${input.bindAddress}:${input.amqpPort}`];
  return [
    "# Rendered by components/rabbitmq/render.ts.",
    ...listen,
    `management.tcp.ip = ${input.bindAddress}`,
    `management.tcp.port = ${input.managementPort}`,
    `prometheus.tcp.ip = ${input.bindAddress}`,
    `prometheus.tcp.port = ${input.prometheusPort}`,
    // Per-queue series (the alerts watch shopfds.dead and the consumers of celery); a handful of queues.
    "prometheus.return_per_object_metrics = true",
    // Users, vhost, queues and policies come from the definitions; with them no guest user is created.
    `load_definitions = ${input.definitionsFile}`,
    "loopback_users = none",
    // Tasks waiting for their ETA are held unacknowledged; allow an hour before the broker gives up.
    "consumer_timeout = 3600000",
    "vm_memory_high_watermark.relative = 0.6",
    "disk_free_limit.absolute = 1GB",
    "log.console = true",
    "log.console.level = info",
    "",
  ].join("\n");
}

export const RABBIT_PLUGINS = ["rabbitmq_management", "rabbitmq_prometheus"] as const;

export function renderEnabledPlugins(): string {
  return `[${RABBIT_PLUGINS.join(",")}].\n`;
}

/** RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt ‖ SHA-256(salt ‖ password)). */
export function rabbitPasswordHash(password: string, salt: Buffer = randomBytes(4)): string {
  if (salt.length !== 4) throw new Error("rabbitPasswordHash: salt must be 4 bytes");
  return Buffer.concat([salt, createHash("sha256").update(Buffer.concat([salt, Buffer.from(password, "utf8")])).digest()]).toString("base64");
}

export function renderDefinitions(input: DefinitionsInput): string {
  const p = new Problems("rabbitmq definitions");
  p.check(isName(input.vhost), "vhost", "must be a lower-case name", input.vhost);
  p.check(input.users.length > 0, "users", "must hold at least one user", input.users.length);
  input.users.forEach((u, i) => {
    p.check(isName(u.name) && u.name !== "guest", `users[${i}].name`, 'must be a lower-case name other than "guest"', u.name);
    p.check(typeof u.password === "string" && u.password.length >= 16, `users[${i}].password`, "must be at least 16 characters (value not shown)", "…");
  });
  p.throwIfAny();
  const vhost = input.vhost;
  const definitions = {
    rabbit_version: "3.10.8",
    vhosts: [{ name: vhost }],
    users: input.users.map((u) => ({
      name: u.name,
      password_hash: rabbitPasswordHash(u.password, input.salt?.(u.name)),
      hashing_algorithm: "rabbit_password_hashing_sha256",
      tags: [...u.tags],
    })),
    // Least privilege: every user is confined to the one vhost; Celery declares generated queues
    // (reply queues, event and pidbox queues), so within the vhost they need configure rights.
    permissions: input.users.map((u) => ({ user: u.name, vhost, configure: ".*", write: ".*", read: ".*" })),
    exchanges: [
      { name: TASK_EXCHANGE, vhost, type: "direct", durable: true, auto_delete: false, internal: false, arguments: {} },
      { name: EVENT_EXCHANGE, vhost, type: "topic", durable: true, auto_delete: false, internal: false, arguments: {} },
      { name: PIDBOX_EXCHANGE, vhost, type: "fanout", durable: false, auto_delete: false, internal: false, arguments: {} },
      { name: REPLY_EXCHANGE, vhost, type: "direct", durable: false, auto_delete: false, internal: false, arguments: {} },
      { name: DEAD_LETTER_EXCHANGE, vhost, type: "direct", durable: true, auto_delete: false, internal: false, arguments: {} },
    ],
    // Classic durable queues: Celery 5.2 workers consume with global QoS, which quorum queues refuse.
    queues: [
      { name: TASK_QUEUE, vhost, durable: true, auto_delete: false, arguments: { ...TASK_QUEUE_ARGUMENTS } },
      { name: EMAIL_QUEUE, vhost, durable: true, auto_delete: false, arguments: { ...TASK_QUEUE_ARGUMENTS } },
      { name: DEAD_LETTER_QUEUE, vhost, durable: true, auto_delete: false, arguments: {} },
    ],
    bindings: [
      { source: TASK_EXCHANGE, vhost, destination: TASK_QUEUE, destination_type: "queue", routing_key: TASK_QUEUE, arguments: {} },
      { source: DEAD_LETTER_EXCHANGE, vhost, destination: DEAD_LETTER_QUEUE, destination_type: "queue", routing_key: DEAD_LETTER_ROUTING_KEY, arguments: {} },
    ],
    policies: [
      // The dead-letter queue is kept for inspection, but bounded: the oldest go first past 100 000.
      { vhost, name: "dead-letter-bound", pattern: `^${DEAD_LETTER_QUEUE.replace(".", "\\.")}$`, "apply-to": "queues", priority: 0, definition: { "max-length": 100000, overflow: "drop-head" } },
    ],
  };
  return JSON.stringify(definitions, null, 2) + "\n";
}
