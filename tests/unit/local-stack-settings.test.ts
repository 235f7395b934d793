/**
 * Layer 1: the local stack runs the dev stack's settings (Pulumi.dev.yaml through parseStackConfig, as
 * the Pulumi program reads them), not a copy of them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { REDIS_NODE_COUNT } from "../../components/redis/render";
import { devStackSettings, postgresOptions, profile, redisOptions } from "../../scripts/local-stack/stack";

const devFile = parse(readFileSync(path.resolve(__dirname, "../../Pulumi.dev.yaml"), "utf8")).config;

describe("the local stack's settings come from Pulumi.dev.yaml", () => {
  it("PostgreSQL replicas, database and user, Redis memory and node timeout are the dev stack's", () => {
    const p = profile("dev", {});
    const pg = postgresOptions(p);
    const redis = redisOptions(p);
    assert.deepEqual([pg.replicas, pg.database, pg.user], [devFile["shopfds:postgres"].replicas, "shopfds", "shopfds"]);
    assert.equal(redis.maxMemory, devFile["shopfds:redis"].maxMemory);
    assert.equal(redis.nodeTimeoutMs, devStackSettings().redis.nodeTimeoutMs);
    assert.equal(REDIS_NODE_COUNT, 6);
  });

  it("a change there is a change here, and a bad value is refused naming the field", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "shopfds-devyaml-"));
    try {
      const file = path.join(dir, "Pulumi.dev.yaml");
      writeFileSync(file, "config:\n  shopfds:platform: docker\n  shopfds:postgres:\n    replicas: 2\n  shopfds:redis:\n    maxMemory: 96mb\n");
      const settings = devStackSettings(file);
      assert.deepEqual([postgresOptions(profile("dev", {}), settings).replicas, redisOptions(profile("dev", {}), settings).maxMemory], [2, "96mb"]);
      writeFileSync(file, "config:\n  shopfds:platform: docker\n  shopfds:redis:\n    nodeTimeoutMs: 60000\n");
      assert.throws(() => devStackSettings(file), /redis\.nodeTimeoutMs/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
