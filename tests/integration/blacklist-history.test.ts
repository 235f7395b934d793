/**
 * The blacklist's history on the test stack's real PostgreSQL and Redis Cluster: every add, renewal,
 * TTL change, removal and expiry recorded with who, why and when, and kept after the entry is gone (a
 * change Redis refused leaves no line: tests/integration/redis-full.test.ts).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Cluster } from "ioredis";
import { Database } from "../../runtime/db/router";
import { Blacklist } from "../../runtime/fds/blacklist";
import { loadStackOutputs } from "../../runtime/outputs";
import { connectRedisCluster } from "../../runtime/redis/client";
import { createMigratedDatabase, sleep } from "../support/databases";

const PREFIX = `bh${process.pid}:`;
let db: Database;
let redis: Cluster;
let blacklist: Blacklist;
let drop: () => Promise<void> = async () => undefined;

before(async () => {
  const outputs = await loadStackOutputs();
  const created = await createMigratedDatabase(outputs, `shopfds_bl_history_${process.pid}`);
  drop = created.drop;
  db = await Database.connect(created.postgres);
  redis = connectRedisCluster(outputs.redis);
  blacklist = new Blacklist(redis, db, { cardHashKeys: outputs.fds.cardHashKeys, keyPrefix: `${PREFIX}bl:` });
});

after(async () => {
  redis?.disconnect();
  await db?.close();
  await drop();
});

describe("blacklist history", () => {
  it("records add, renewal, TTL change and removal with the actor and reason, and keeps them after the entry is gone", async () => {
    await blacklist.add({ type: "ip", value: "203.0.113.7", reason: "scanner", source: "admin:kim@shopfds.test" });
    await blacklist.add({ type: "ip", value: "203.0.113.7", reason: "scanner, again", source: "admin:lee@shopfds.test" });
    await blacklist.changeTtl("ip", "203.0.113.7", 60, { actor: "admin:kim@shopfds.test" });
    assert.equal(await blacklist.remove("ip", "203.0.113.7", { actor: "admin:lee@shopfds.test", reason: "false positive: our office" }), true);
    assert.equal((await blacklist.check({ ip: "203.0.113.7" })).listed, false);
    const { events } = await blacklist.history({ type: "ip", value: "203.0.113.7" });
    assert.deepEqual(
      events.map((e) => [e.action, e.actor, e.reason]),
      [
        ["added", "admin:kim@shopfds.test", "scanner"],
        ["renewed", "admin:lee@shopfds.test", "scanner, again"],
        ["changed", "admin:kim@shopfds.test", "scanner, again"],
        ["removed", "admin:lee@shopfds.test", "false positive: our office"],
      ],
    );
    assert.ok(events.every((e, i) => i === 0 || e.at >= events[i - 1]!.at), "in order");
  });

  it("records an expiry when the sweep removes the expired row, by system:expiry", async () => {
    await blacklist.add({ type: "email", value: "Fraud@Example.com", reason: "chargebacks", source: "admin:kim@shopfds.test", ttlSeconds: 1 });
    await sleep(1200);
    assert.equal((await blacklist.check({ email: "fraud@example.com" })).listed, false, "expired everywhere already");
    assert.ok((await blacklist.purgeExpired()) >= 1);
    const { events } = await blacklist.history({ type: "email", value: "FRAUD@example.com" });
    assert.deepEqual(events.map((e) => [e.action, e.actor, e.value]), [["added", "admin:kim@shopfds.test", "fraud@example.com"], ["expired", "system:expiry", "fraud@example.com"]]);
  });

  it("keeps a card's history under its keyed hash, never the number, and pages through everything", async () => {
    await blacklist.add({ type: "card", value: "4111 1111 1111 1111", reason: "stolen", source: "admin:kim@shopfds.test" });
    const card = await blacklist.history({ type: "card", value: "4111-1111-1111-1111" });
    assert.equal(card.events.length, 1);
    assert.match(card.events[0]!.value, /^[0-9a-f]{64}$/);
    const all: number[] = [];
    for (let page = await blacklist.history({ limit: 2 }); ; page = await blacklist.history({ limit: 2, after: page.next! })) {
      all.push(...page.events.map((e) => e.id));
      if (page.next === undefined) break;
    }
    assert.equal(all.length, 7);
    assert.deepEqual(all, [...all].sort((a, b) => a - b));
    await assert.rejects(blacklist.history({ value: "x" }), /type: must be given with value/);
  });
});
