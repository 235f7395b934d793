/** Layer 1: the RabbitMQ renderers, exactly; they feed Docker, Kubernetes and the local stack alike. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { rabbitPasswordHash, renderDefinitions, renderEnabledPlugins, renderRabbitConf, TASK_QUEUE_ARGUMENTS } from "../../components/rabbitmq/render";
import { InvalidSettingsError } from "../../components/validation";

const users = [
  { name: "shopfds", password: "a".repeat(32), tags: [] as const },
  { name: "flower", password: "b".repeat(32), tags: ["monitoring"] as const },
];

describe("renderRabbitConf", () => {
  it("listens where told, loads the definitions at boot and enables no guest", () => {
    assert.equal(
      renderRabbitConf({ amqpPort: 5672, managementPort: 15672, prometheusPort: 15692, bindAddress: "0.0.0.0", definitionsFile: "/run/secrets/defs.json" }),
      [
        "# Rendered by components/rabbitmq/render.ts.",
        "listeners.tcp.1 = 0.0.0.0:5672",
        "management.tcp.ip = 0.0.0.0",
        "management.tcp.port = 15672",
        "prometheus.tcp.ip = 0.0.0.0",
        "prometheus.tcp.port = 15692",
        "prometheus.return_per_object_metrics = true",
        "load_definitions = /run/secrets/defs.json",
        "loopback_users = none",
        "consumer_timeout = 3600000",
        "vm_memory_high_watermark.relative = 0.6",
        "disk_free_limit.absolute = 1GB",
        "log.console = true",
        "log.console.level = info",
        "",
      ].join("\n"),
    );
  });

  it("names every bad setting", () => {
    assert.throws(
      () => renderRabbitConf({ amqpPort: 5672, managementPort: 5672, prometheusPort: 0, bindAddress: "any", definitionsFile: "defs.json" }),
      (e: Error) =>
        e instanceof InvalidSettingsError &&
        e.message ===
          [
            "rabbitmq.conf: 4 invalid settings:",
            "  - prometheusPort: must be an integer from 1 to 65535 (got 0)",
            "  - managementPort: the three ports must differ (got [5672,5672,0])",
            '  - bindAddress: must be an IPv4 address (got "any")',
            '  - definitionsFile: must be an absolute path (got "defs.json")',
          ].join("\n"),
    );
  });

  it("with TLS, listens for AMQPS only (no plain listener), the server's certificate from the files given", () => {
    const text = renderRabbitConf({ amqpPort: 5671, managementPort: 15672, prometheusPort: 15692, bindAddress: "127.0.0.1", definitionsFile: "/d.json", tls: { certFile: "/tls/tls.crt", keyFile: "/tls/tls.key", caFile: "/tls/ca.crt" } });
    const lines = text.split("\n");
    for (const line of ["listeners.tcp = none", "listeners.ssl.1 = 127.0.0.1:5671", "ssl_options.certfile = /tls/tls.crt", "ssl_options.keyfile = /tls/tls.key", "ssl_options.cacertfile = /tls/ca.crt", "ssl_options.versions.1 = tlsv1.3", "ssl_options.versions.2 = tlsv1.2"]) assert.ok(lines.includes(line), line);
    assert.ok(!lines.some((l) => l.startsWith("listeners.tcp.")), "no plain AMQP listener");
    assert.throws(() => renderRabbitConf({ amqpPort: 5671, managementPort: 15672, prometheusPort: 15692, bindAddress: "127.0.0.1", definitionsFile: "/d.json", tls: { certFile: "/tls/tls.crt", keyFile: "key", caFile: "/tls/ca.crt" } }), /tls\.keyFile: must be an absolute path \(got "key"\)/);
  });

  it("enables the management and Prometheus plugins", () => assert.equal(renderEnabledPlugins(), "[rabbitmq_management,rabbitmq_prometheus].\n"));
});

describe("renderDefinitions", () => {
  const defs = JSON.parse(renderDefinitions({ vhost: "shopfds", users, salt: () => Buffer.from([1, 2, 3, 4]) }));

  it("confines every user to the vhost, with hashed passwords and no guest", () => {
    assert.deepEqual(defs.vhosts, [{ name: "shopfds" }]);
    assert.deepEqual(defs.permissions.map((p: { user: string; vhost: string }) => [p.user, p.vhost]), [["shopfds", "shopfds"], ["flower", "shopfds"]]);
    assert.equal(defs.users[0].hashing_algorithm, "rabbit_password_hashing_sha256");
    assert.ok(!JSON.stringify(defs).includes("a".repeat(32)), "no clear-text password");
  });

  it("hashes as RabbitMQ does: base64(salt ‖ sha256(salt ‖ password))", () => {
    const salt = Buffer.from([1, 2, 3, 4]);
    const expected = Buffer.concat([salt, createHash("sha256").update(Buffer.concat([salt, Buffer.from("a".repeat(32))])).digest()]).toString("base64");
    assert.equal(defs.users[0].password_hash, expected);
    assert.equal(rabbitPasswordHash("a".repeat(32), salt), expected);
  });

  it("declares Celery's topology with the durability Celery uses, and the task queues' dead-lettering (celery, and shopfds.email for e-mail)", () => {
    const ex = Object.fromEntries(defs.exchanges.map((e: { name: string; type: string; durable: boolean }) => [e.name, [e.type, e.durable]]));
    assert.deepEqual(ex, { celery: ["direct", true], celeryev: ["topic", true], "celery.pidbox": ["fanout", false], "reply.celery.pidbox": ["direct", false], "shopfds.dlx": ["direct", true] });
    assert.deepEqual(defs.queues.map((q: { name: string; durable: boolean; arguments: object }) => [q.name, q.durable, q.arguments]), [["celery", true, TASK_QUEUE_ARGUMENTS], ["shopfds.email", true, TASK_QUEUE_ARGUMENTS], ["shopfds.dead", true, {}]]);
    assert.deepEqual(defs.policies[0].definition, { "max-length": 100000, overflow: "drop-head" });
  });

  it("refuses guest and short passwords, never showing a password", () => {
    assert.throws(
      () => renderDefinitions({ vhost: "shopfds", users: [{ name: "guest", password: "short", tags: [] }] }),
      (e: Error) => e.message === ['rabbitmq definitions: 2 invalid settings:', '  - users[0].name: must be a lower-case name other than "guest" (got "guest")', '  - users[0].password: must be at least 16 characters (value not shown) (got "…")'].join("\n"),
    );
  });
});

/**
 * The local stack runs Debian's RabbitMQ 3.10.8 (it loads these files for real in the integration
 * tests); the Docker and Kubernetes stacks run 3.13.7. What 3.13 deprecates or drops that a 3.10
 * definition could hold is checked here, so files that work locally also load on the images.
 */
describe("the same files on RabbitMQ 3.10 (local stack) and 3.13 (images)", () => {
  const conf = renderRabbitConf({ amqpPort: 5672, managementPort: 15672, prometheusPort: 15692, bindAddress: "0.0.0.0", definitionsFile: "/etc/rabbitmq/definitions.json" });
  const defs = JSON.parse(renderDefinitions({ vhost: "shopfds", users, salt: () => Buffer.from([1, 2, 3, 4]) }));

  it("no classic queue mirroring (3.13 deprecates it, 4.0 removes it): no ha-* key in any policy", () => {
    const keys = defs.policies.flatMap((p: { definition: object }) => Object.keys(p.definition));
    assert.deepEqual(keys.filter((k: string) => k.startsWith("ha-")), []);
    assert.ok(keys.length > 0, "the policies were read");
  });

  it("no transient non-exclusive queue declared (a 3.13 deprecated feature): every definition queue is durable", () => {
    assert.deepEqual(defs.queues.filter((q: { durable: boolean }) => !q.durable).map((q: { name: string }) => q.name), []);
  });

  it("only settings and plugins both versions know: the rabbitmq.conf keys 3.10 and 3.13 share, the two plugins both ship", () => {
    const known = ["listeners.tcp.1", "management.tcp.ip", "management.tcp.port", "prometheus.tcp.ip", "prometheus.tcp.port", "prometheus.return_per_object_metrics", "load_definitions", "loopback_users", "consumer_timeout", "vm_memory_high_watermark.relative", "disk_free_limit.absolute", "log.console", "log.console.level"];
    const keys = conf.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(" = ")[0]);
    assert.deepEqual(keys.filter((k) => !known.includes(k!)), []);
    assert.equal(renderEnabledPlugins(), "[rabbitmq_management,rabbitmq_prometheus].\n");
  });

  it("the definitions' rabbit_version is the oldest broker that loads them; newer ones import them as they are", () => {
    assert.equal(defs.rabbit_version, "3.10.8");
  });
});
