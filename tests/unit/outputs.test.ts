/** Layer 1: the stack-outputs contract and where the runtime reads it from. */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { loadStackOutputs, parseStackOutputs, StackOutputsError } from "../../runtime/outputs";

const valid = {
  postgres: {
    primary: { host: "127.0.0.1", port: 15432 },
    replicas: [{ host: "127.0.0.1", port: 15433 }],
    database: "shopfds",
    user: "shopfds",
    password: "s3cret-value",
  },
  redis: {
    nodes: Array.from({ length: 6 }, (_, i) => ({ host: "127.0.0.1", port: 15401 + i })),
    password: "redis-s3cret",
  },
  fds: { cardHashKeys: [{ version: 1, key: "ab".repeat(32) }] },
  rabbitmq: { url: "amqp://shopfds:rabbit-s3cret@127.0.0.1:15472/shopfds", managementUrl: "http://127.0.0.1:15473/" },
};

describe("stack-outputs contract", () => {
  it("accepts the PostgreSQL, Redis, FDS and RabbitMQ outputs", () => {
    assert.deepEqual(parseStackOutputs(valid), valid);
  });

  it("names each broken output and never echoes a value (outputs hold passwords)", () => {
    const broken = {
      postgres: { ...valid.postgres, primary: { host: "", port: 0 }, replicas: [], password: "" },
      redis: { nodes: valid.redis.nodes.slice(0, 3), password: "" },
      fds: { cardHashKeys: [{ version: 0, key: "not-hex" }] },
      rabbitmq: { url: "amqp://127.0.0.1:15472", managementUrl: "not a url" },
    };
    assert.throws(
      () => parseStackOutputs(broken, "test outputs"),
      (e: unknown) => {
        assert.ok(e instanceof StackOutputsError);
        assert.equal(
          e.message,
          [
            "test outputs do not match the stack-outputs contract:",
            "  - postgres.primary.host: must be a host name or address",
            "  - postgres.primary.port: must be an integer from 1 to 65535",
            "  - postgres.replicas: must list at least one replica (FR-001)",
            "  - postgres.password: must not be empty",
            "  - redis.nodes: must list the 6 nodes of the cluster (3 masters, 3 replicas)",
            "  - redis.password: must not be empty",
            "  - fds.cardHashKeys.0.version: must be at least 1",
            "  - fds.cardHashKeys.0.key: must be 64 hex digits (a 256-bit key)",
            "  - rabbitmq.url: must be amqp://user:password@host:port/vhost",
            "  - rabbitmq.managementUrl: must be an http(s) URL",
          ].join("\n"),
        );
        return true;
      },
    );
    assert.throws(() => parseStackOutputs({ ...valid, postgres: { ...valid.postgres, port: 1, password: 42 } }), (e: unknown) => !String((e as Error).message).includes("42"));
    assert.throws(() => parseStackOutputs({ ...valid, fds: { cardHashKeys: [{ version: 1, key: "zz-secret-key" }] } }), (e: unknown) => !String((e as Error).message).includes("zz-secret-key"));
  });

  it("takes verified TLS for every data service, and refuses a plain amqp:// URL beside rabbitmq.tls", () => {
    const tls = { caFile: "/run/secrets/shopfds-tls-ca/ca.crt", serverName: "shopfds-prod-redis" };
    const withTls = {
      ...valid,
      redis: { ...valid.redis, tls },
      rabbitmq: { url: "amqps://shopfds:rabbit-s3cret@rabbit:5671/shopfds", managementUrl: "http://rabbit:15672/", tls: { caFile: tls.caFile } },
    };
    assert.deepEqual(parseStackOutputs(withTls), withTls);
    assert.throws(
      () => parseStackOutputs({ ...withTls, redis: { ...withTls.redis, tls: { caFile: "ca.crt", serverName: "" } }, rabbitmq: { ...withTls.rabbitmq, url: valid.rabbitmq.url } }),
      (e: unknown) => {
        assert.equal(
          (e as Error).message,
          [
            "stack outputs do not match the stack-outputs contract:",
            "  - redis.tls.caFile: must be an absolute path",
            "  - redis.tls.serverName: must be a DNS name",
            "  - rabbitmq.url: must be amqps:// when tls is set (the broker takes TLS only)",
          ].join("\n"),
        );
        return true;
      },
    );
  });

  it("reads JSON from SHOPFDS_STACK_OUTPUTS before a file named by SHOPFDS_OUTPUTS_FILE", async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), "outputs-")), "outputs.json");
    writeFileSync(file, JSON.stringify({ ...valid, postgres: { ...valid.postgres, database: "from_file" } }));
    assert.equal((await loadStackOutputs(undefined, { SHOPFDS_OUTPUTS_FILE: file })).postgres.database, "from_file");
    assert.equal((await loadStackOutputs(undefined, { SHOPFDS_OUTPUTS_FILE: file, SHOPFDS_STACK_OUTPUTS: JSON.stringify(valid) })).postgres.database, "shopfds");
  });

  it("explains what to set when no source is configured, and what is wrong with a bad one", async () => {
    await assert.rejects(loadStackOutputs(undefined, {}), /no stack outputs: set SHOPFDS_STACK_OUTPUTS \(JSON\), SHOPFDS_OUTPUTS_FILE/);
    await assert.rejects(loadStackOutputs({ json: "{not json" }), /SHOPFDS_STACK_OUTPUTS is not valid JSON/);
    await assert.rejects(loadStackOutputs({ file: "/nonexistent/outputs.json" }), /cannot read stack outputs file \/nonexistent\/outputs.json: ENOENT/);
  });
});
