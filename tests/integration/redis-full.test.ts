/**
 * Layer 3: the Redis Cluster's masters at `maxmemory` (the stacks run `noeviction`: writes are refused
 * with OOM, reads go on), on the test stack's real cluster. A blacklist change reaches both stores or
 * neither: an add Redis refuses leaves no row in PostgreSQL (so no entry the admin believes active goes
 * unenforced), answered 503 BLACKLIST_STORE_FULL with Retry-After; a TTL change is rolled back; entries
 * made before are still enforced and can still be removed; a new session is a prompt 503, not a 500;
 * the health check `redis:memory` fails while the masters are full.
 * Every master's maxmemory is restored afterwards, even when a test fails.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Cluster } from "ioredis";
import { Database } from "../../runtime/db/router";
import { Blacklist, BlacklistNotStoredError } from "../../runtime/fds/blacklist";
import { errorResponse } from "../../runtime/http/errors";
import { loadStackOutputs } from "../../runtime/outputs";
import { connectRedisCluster } from "../../runtime/redis/client";
import { SessionStore } from "../../runtime/redis/sessions";
import { redisMemoryCheck } from "../../runtime/health/checks";
import { createMigratedDatabase } from "../support/databases";

let db: Database;
let redis: Cluster;
let blacklist: Blacklist;
let dropDb: () => Promise<void> = async () => undefined;
const restore: (() => Promise<unknown>)[] = [];
const ip = (n: number) => `198.51.100.${(process.pid % 50) + n}`;

/** Every master's maxmemory below what it uses: any write command is refused with OOM. */
async function fillMasters(): Promise<void> {
  for (const master of redis.nodes("master")) {
    const [, original] = (await master.config("GET", "maxmemory")) as [string, string];
    restore.push(() => master.config("SET", "maxmemory", original));
    await master.config("SET", "maxmemory", "1");
  }
}

async function unfill(): Promise<void> {
  for (const undo of restore.splice(0)) await undo();
}

const pgRow = async (value: string) => (await db.query("SELECT value, expires_at FROM blacklist_entries WHERE value = $1", [value], { fresh: true })).rows[0];

before(async () => {
  const outputs = await loadStackOutputs();
  const created = await createMigratedDatabase(outputs, `shopfds_redis_full_${process.pid}`);
  dropDb = created.drop;
  db = await Database.connect(created.postgres);
  redis = connectRedisCluster(outputs.redis);
  blacklist = new Blacklist(redis, db, { cardHashKeys: outputs.fds.cardHashKeys });
  await redis.cluster("INFO");
});

after(async () => {
  await unfill();
  await blacklist.remove("ip", ip(1)).catch(() => undefined);
  redis?.disconnect();
  await db?.close();
  await dropDb();
});

describe("Redis Cluster masters at maxmemory (noeviction)", () => {
  it("an add Redis refuses changes neither store and is answered 503 BLACKLIST_STORE_FULL; what was listed before stays enforced and removable", { timeout: 60_000 }, async () => {
    await blacklist.add({ type: "ip", value: ip(1), reason: "before the fill", source: "test", ttlSeconds: 600 });
    await blacklist.add({ type: "ip", value: ip(3), reason: "before the fill", source: "test", ttlSeconds: 600 });
    const ttlBefore = (await pgRow(ip(1))).expires_at as Date;
    const memory = redisMemoryCheck(redis);
    assert.equal((await memory.run()).status ?? "pass", "pass", "the shipped maxmemory leaves room");
    await fillMasters();
    try {
      const refused = await blacklist.add({ type: "ip", value: ip(2), reason: "during the fill", source: "test", ttlSeconds: 600 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(refused instanceof BlacklistNotStoredError && refused.full, String(refused));
      assert.equal(await pgRow(ip(2)), undefined, "PostgreSQL was rolled back: no entry the admin would believe active");
      assert.equal((await blacklist.check({ ip: ip(2) })).listed, false);
      const answer = errorResponse(refused);
      assert.deepEqual([answer.status, answer.body.error.code, answer.headers["retry-after"]], [503, "BLACKLIST_STORE_FULL", "30"]);
      assert.match(answer.body.error.message, /out of memory \(maxmemory\): nothing was changed/);

      // A TTL change Redis refuses is rolled back too.
      await assert.rejects(blacklist.changeTtl("ip", ip(1), 60), (e: unknown) => e instanceof BlacklistNotStoredError && e.full);
      assert.equal(((await pgRow(ip(1))).expires_at as Date).getTime(), ttlBefore.getTime());
      // Nor does either leave a line in the history: the trigger's insert rolled back with them.
      assert.deepEqual((await blacklist.history({ type: "ip", value: ip(2) })).events, []);
      assert.deepEqual((await blacklist.history({ type: "ip", value: ip(1) })).events.map((e) => e.action), ["added"]);

      // Reads go on: the entry made before is enforced from Redis; DEL is not refused at maxmemory.
      const listed = await blacklist.check({ ip: ip(1) });
      assert.deepEqual([listed.listed, listed.source], [true, "redis"]);
      assert.equal(await blacklist.remove("ip", ip(3)), true);
      assert.equal(await pgRow(ip(3)), undefined);
      assert.equal((await blacklist.check({ ip: ip(3) })).listed, false);

      // /health says so (not critical: every instance shares the cluster).
      const reported = await memory.run();
      assert.equal(reported.status, "fail");
      assert.match(String(reported.output), /is at maxmemory .*writes are refused \(noeviction\): blacklist changes and logins fail/);
      assert.equal(memory.critical, false);

      // A login's new session: a prompt 503 with Retry-After, not a 500.
      const sessions = new SessionStore<{ user: number }>(redis);
      const loginError = await sessions.create({ user: 1 }).then(() => undefined, (e: unknown) => e);
      assert.ok(loginError, "the session write was refused");
      assert.equal(errorResponse(loginError).status, 503, String(loginError));
    } finally {
      await unfill();
    }
    // Memory back: the same add goes through to both stores.
    await blacklist.add({ type: "ip", value: ip(2), reason: "after the fill", source: "test", ttlSeconds: 600 });
    assert.ok(await pgRow(ip(2)));
    assert.deepEqual((await blacklist.check({ ip: ip(2) })).source, "redis");
    await blacklist.remove("ip", ip(2));
  });
});
