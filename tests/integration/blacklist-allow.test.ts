/**
 * Allow entries and the bulk import and export (issue 29), on the test stack's real PostgreSQL and
 * Redis Cluster: an allow beats a block of the same value (stated in the decision's factors) while the
 * blocks of the other values stand, from Redis and from PostgreSQL alike; what a crash between the two
 * writes leaves errs towards blocking; 10 000 lines with 3 bad ones report those 3 and apply the rest
 * once (a rerun changes nothing, an export re-imported changes nothing); a batch Redis refuses midway
 * leaves nothing in either store. Every master's maxmemory is restored, even when a test fails.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Cluster } from "ioredis";
import { Database } from "../../runtime/db/router";
import { Blacklist, BlacklistNotStoredError } from "../../runtime/fds/blacklist";
import { FraudDetector } from "../../runtime/fds/evaluate";
import { loadStackOutputs, StackOutputs } from "../../runtime/outputs";
import { connectRedisCluster } from "../../runtime/redis/client";
import { createMigratedDatabase } from "../support/databases";

const PREFIX = `ba${process.pid}:`;
let outputs: StackOutputs;
let db: Database;
let redis: Cluster;
let blacklist: Blacklist;
let fds: FraudDetector;
let drop: () => Promise<void> = async () => undefined;
const restore: (() => Promise<unknown>)[] = [];

before(async () => {
  outputs = await loadStackOutputs();
  const created = await createMigratedDatabase(outputs, `shopfds_bl_allow_${process.pid}`);
  drop = created.drop;
  db = await Database.connect(created.postgres);
  redis = connectRedisCluster(outputs.redis);
  blacklist = new Blacklist(redis, db, { cardHashKeys: outputs.fds.cardHashKeys, keyPrefix: `${PREFIX}bl:` });
  fds = new FraudDetector(blacklist, redis, outputs.fds.cardHashKeys, { velocityKeyPrefix: `${PREFIX}vel:` });
});

after(async () => {
  for (const undo of restore.splice(0)) await undo().catch(() => undefined);
  // The keys this file wrote (its own prefix), on every master.
  for (const master of redis?.nodes("master") ?? []) {
    for (let cursor = "0"; ; ) {
      const [next, keys] = await master.scan(cursor, "MATCH", `${PREFIX}*`, "COUNT", 1000);
      for (const key of keys) await master.del(key);
      if ((cursor = next) === "0") break;
    }
  }
  redis?.disconnect();
  await db?.close();
  await drop();
});

const tx = { amount: 10_000, ip: "203.0.113.80", email: "vip@shop.test", card: "4111 1111 1111 1111" };

/** The keys of the file's prefix on every master. */
async function keysOnMasters(): Promise<number> {
  let n = 0;
  for (const master of redis.nodes("master")) {
    for (let cursor = "0"; ; ) {
      const [next, keys] = await master.scan(cursor, "MATCH", `${PREFIX}*`, "COUNT", 1000);
      n += keys.length;
      if ((cursor = next) === "0") break;
    }
  }
  return n;
}

describe("allow entries", () => {
  it("an allow wins over a block of the same value, named in the factors; blocks of the other values stand; removing the allow restores the block", async () => {
    await blacklist.add({ type: "email", value: tx.email, reason: "chargebacks last year", source: "admin:kim@shopfds.test" });
    assert.equal((await fds.evaluate(tx)).decision, "block");

    await blacklist.add({ kind: "allow", type: "email", value: "VIP@shop.test", reason: "verified corporate buyer", source: "admin:lee@shopfds.test" });
    const allowed = await fds.evaluate(tx);
    assert.equal(allowed.decision, "approve");
    assert.deepEqual(
      allowed.factors.find((f) => f.rule === "allowlist"),
      { rule: "allowlist", score: 0, detail: { allowed: [{ type: "email", reason: "verified corporate buyer" }], overrode: [{ type: "email", reason: "chargebacks last year" }] } },
    );
    assert.equal(allowed.blacklistSource, "redis");

    // An allow of the e-mail does not set aside a block of the card.
    await blacklist.add({ type: "card", value: tx.card, reason: "reported stolen", source: "admin:kim@shopfds.test" });
    const card = await fds.evaluate(tx);
    assert.equal(card.decision, "block");
    assert.deepEqual(card.factors.find((f) => f.rule === "blacklist")?.detail, { matched: [{ type: "card", reason: "reported stolen" }] });
    assert.ok(card.factors.some((f) => f.rule === "allowlist"), "the e-mail's block is still named as set aside");
    await blacklist.remove("card", tx.card);

    // The same answer from PostgreSQL when the cluster cannot answer (a client of a port nobody serves).
    const dead = new Cluster([{ host: "127.0.0.1", port: 1 }], { enableOfflineQueue: false, clusterRetryStrategy: () => null, lazyConnect: true });
    try {
      const fromDb = await new Blacklist(dead, db, { cardHashKeys: outputs.fds.cardHashKeys, keyPrefix: `${PREFIX}bl:`, checkTimeoutMs: 200 }).check({ email: tx.email, ip: tx.ip });
      assert.deepEqual([fromDb.source, fromDb.listed, fromDb.allowed.map((a) => a.reason), fromDb.overridden.map((b) => b.reason)], ["postgres", false, ["verified corporate buyer"], ["chargebacks last year"]]);
    } finally {
      dead.disconnect();
    }

    assert.equal(await blacklist.remove("email", tx.email, { kind: "allow", actor: "admin:kim@shopfds.test", reason: "contract ended" }), true);
    assert.equal((await fds.evaluate(tx)).decision, "block");
    const { events } = await blacklist.history({ type: "email", value: tx.email });
    assert.deepEqual(events.map((e) => [e.kind, e.action, e.actor]), [["block", "added", "admin:kim@shopfds.test"], ["allow", "added", "admin:lee@shopfds.test"], ["allow", "removed", "admin:kim@shopfds.test"]]);
    const lists = await blacklist.list("email");
    assert.deepEqual(lists.entries.map((e) => e.kind), ["block"]);
    await blacklist.remove("email", tx.email);
  });

  it("a check reads the allow keys only of the values a block matched: none for an unlisted transaction", async () => {
    // Counted at the client (the commands it sends to the real cluster), not a model of Redis.
    const gets: string[] = [];
    // "block:ip" for <prefix>bl:ip:<value>, "allow:ip" for <prefix>allow:ip:<value>.
    const read = () => gets.map((k) => (k.startsWith(`${PREFIX}bl:`) ? `block:${k.slice(`${PREFIX}bl:`.length).split(":")[0]}` : `allow:${k.slice(`${PREFIX}allow:`.length).split(":")[0]}`));
    const get = redis.get.bind(redis);
    redis.get = ((key: string) => (gets.push(key), get(key))) as typeof redis.get;
    try {
      // An allow of an IP nobody blocked: not read, not reported (it sets nothing aside).
      await blacklist.add({ kind: "allow", type: "ip", value: "198.51.100.7", reason: "office", source: "test" });
      gets.length = 0;
      const plain = await blacklist.check({ ip: "198.51.100.7", email: "nobody@shop.test" });
      assert.deepEqual([plain.listed, plain.allowed, read()], [false, [], ["block:ip", "block:email"]]);

      // Blocked too: the IP's allow is read (one more GET) and wins; the e-mail's allow is never asked.
      await blacklist.add({ type: "ip", value: "198.51.100.7", reason: "scanner", source: "test" });
      gets.length = 0;
      const set = await blacklist.check({ ip: "198.51.100.7", email: "nobody@shop.test" });
      assert.deepEqual([set.listed, set.allowed.map((a) => a.reason), set.overridden.map((b) => b.reason)], [false, ["office"], ["scanner"]]);
      assert.deepEqual(read(), ["block:ip", "block:email", "allow:ip"]);
    } finally {
      redis.get = get;
      await blacklist.remove("ip", "198.51.100.7");
      await blacklist.remove("ip", "198.51.100.7", { kind: "allow", actor: "test", reason: "test over" });
    }
  });

  it("what a crash between the two writes leaves errs towards blocking", async () => {
    // An allow written to Redis whose transaction never committed: Redis has the key, PostgreSQL no row.
    await blacklist.add({ type: "ip", value: "203.0.113.81", reason: "scanner", source: "test" });
    const stray = await blacklist.add({ kind: "allow", type: "ip", value: "203.0.113.81", reason: "office", source: "test" });
    await db.query("DELETE FROM blacklist_entries WHERE kind = 'allow' AND value = $1", [stray.value]);
    assert.ok(await redis.get(`${PREFIX}allow:ip:203.0.113.81`), "the allow key is still in Redis");
    const check = await blacklist.check({ ip: "203.0.113.81" });
    assert.deepEqual([check.listed, check.source, check.allowed], [true, "redis", []], "PostgreSQL does not vouch for the allow: the block stands");

    // A block removal committed in PostgreSQL whose Redis delete never ran: the key keeps blocking, and
    // retrying the removal deletes it (true, though the row is already gone).
    await db.query("DELETE FROM blacklist_entries WHERE kind = 'block' AND value = '203.0.113.81'");
    assert.equal((await blacklist.check({ ip: "203.0.113.81" })).listed, true);
    assert.equal(await blacklist.remove("ip", "203.0.113.81"), true);
    assert.equal((await blacklist.check({ ip: "203.0.113.81" })).listed, false);
    assert.equal(await blacklist.remove("ip", "203.0.113.81"), false, "nothing left to remove");
  });
});

describe("bulk import and export", () => {
  const lines = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      JSON.stringify(i % 2 === 0 ? { type: "ip", value: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, reason: "botnet feed 2026-12" } : { kind: i % 10 === 1 ? "allow" : "block", type: "email", value: `user${i}@bulk.test`, reason: "feed", ttlSeconds: 86_400 }),
    );

  it("10 000 lines with 3 bad ones: those 3 reported by line and field, the rest applied once; a rerun changes nothing", { timeout: 120_000 }, async () => {
    const text = lines(10_000);
    text[41] = JSON.stringify({ type: "ip", value: "10.0.0.999", reason: "typo" });
    text[4999] = JSON.stringify({ type: "email", value: "nobody@bulk.test" });
    text[8000] = JSON.stringify({ type: "ip", value: "10.9.9.9", reason: "x", colour: "red" });
    const body = text.join("\n") + "\n";
    const historyBefore = Number((await db.query("SELECT count(*) AS n FROM blacklist_history", [], { fresh: true })).rows[0].n);

    const report = await blacklist.importEntries(body, { format: "ndjson", actor: "admin:kim@shopfds.test" });
    assert.deepEqual(report.errors, [
      { line: 42, field: "value", problem: 'must be an IPv4 or IPv6 address (got "10.0.0.999")' },
      { line: 5000, field: "reason", problem: "must be a string" },
      { line: 8001, field: "colour", problem: "is not a field of an entry (fields: kind, type, value, hash, keyVersion, reason, source, ttlSeconds, expiresAt)" },
    ]);
    assert.deepEqual([report.lines, report.added, report.updated, report.unchanged, report.applied], [10_000, 9_997, 0, 0, true]);
    const rows = await db.query("SELECT kind, count(*)::int AS n FROM blacklist_entries WHERE value LIKE '10.%' OR value LIKE '%@bulk.test' GROUP BY kind ORDER BY kind", [], { fresh: true });
    assert.deepEqual(rows.rows, [{ kind: "allow", n: 999 }, { kind: "block", n: 8998 }]);
    assert.equal(Number((await db.query("SELECT count(*) AS n FROM blacklist_history", [], { fresh: true })).rows[0].n) - historyBefore, 9_997, "one history line per entry");
    assert.equal((await blacklist.check({ ip: "10.0.39.14" })).listed, true, "line 9 999's IP is enforced from Redis");
    assert.deepEqual((await blacklist.check({ email: "user3@bulk.test" })).matches.map((m) => m.source), ["admin:kim@shopfds.test"]);
    assert.equal((await blacklist.history({ type: "email", value: "user1@bulk.test" })).events[0]?.actor, "admin:kim@shopfds.test");

    const again = await blacklist.importEntries(body, { format: "ndjson", actor: "admin:kim@shopfds.test" });
    assert.deepEqual([again.added, again.updated, again.unchanged, again.errors.length], [0, 0, 9_997, 3]);
    assert.equal(Number((await db.query("SELECT count(*) AS n FROM blacklist_history", [], { fresh: true })).rows[0].n) - historyBefore, 9_997, "the rerun wrote no history");
  });

  it("an export re-imported changes nothing; CSV reads quoted fields; reject applies nothing when a line is bad", async () => {
    let exported = "";
    for await (const chunk of blacklist.exportEntries({ format: "csv", type: "email", kind: "allow" })) exported += chunk;
    const csvLines = exported.trimEnd().split("\n");
    assert.equal(csvLines[0], "kind,type,value,hash,keyVersion,reason,source,ttlSeconds,expiresAt");
    assert.equal(csvLines.length, 1 + 999);
    const reimport = await blacklist.importEntries(exported, { format: "csv", actor: "admin:lee@shopfds.test" });
    assert.deepEqual([reimport.lines, reimport.added, reimport.updated, reimport.unchanged, reimport.errors], [999, 0, 0, 999, []]);

    await blacklist.add({ type: "card", value: "5555 5555 5555 4444", reason: "stolen", source: "admin:kim@shopfds.test" });
    let ndjson = "";
    for await (const chunk of blacklist.exportEntries({ format: "ndjson", type: "card" })) ndjson += chunk;
    const card = JSON.parse(ndjson.trim());
    assert.match(card.hash, /^[0-9a-f]{64}$/);
    assert.ok(!ndjson.includes("5555"), "never the number");
    assert.equal((await blacklist.importEntries(ndjson, { format: "ndjson", actor: "admin:lee@shopfds.test" })).unchanged, 1);

    const csv = 'type,value,reason\nemail,quoted@bulk.test,"chargebacks, twice ""confirmed"""\nip,not-an-ip,x\n';
    const rejected = await blacklist.importEntries(csv, { format: "csv", actor: "admin:lee@shopfds.test", onInvalid: "reject" });
    assert.deepEqual([rejected.applied, rejected.errors.map((e) => [e.line, e.field])], [false, [[3, "value"]]]);
    assert.equal((await blacklist.check({ email: "quoted@bulk.test" })).listed, false, "nothing applied");
    const skipped = await blacklist.importEntries(csv, { format: "csv", actor: "admin:lee@shopfds.test" });
    assert.equal(skipped.added, 1);
    assert.deepEqual((await blacklist.check({ email: "quoted@bulk.test" })).matches.map((m) => m.reason), ['chargebacks, twice "confirmed"']);
    await assert.rejects(blacklist.importEntries('type,value\nip,"1.2.3.4\n', { format: "csv", actor: "a" }), /body: not readable as CSV/);
    const dup = await blacklist.importEntries('{"type":"ip","value":"10.77.0.1","reason":"a"}\n{"type":"ip","value":"10.77.0.01","reason":"b"}\n{"type":"ip","value":"::ffff:10.77.0.1","reason":"c"}', { format: "ndjson", actor: "a" });
    assert.deepEqual(dup.errors.map((e) => [e.line, e.field, e.problem]), [
      [2, "value", 'must be an IPv4 or IPv6 address (got "10.77.0.01")'],
      [3, "value", "the same block ip entry as line 1"],
    ]);
  });

  it("a batch Redis refuses midway leaves nothing in either store", { timeout: 120_000 }, async () => {
    const keysBefore = await keysOnMasters();
    const rowsBefore = Number((await db.query("SELECT count(*) AS n FROM blacklist_entries", [], { fresh: true })).rows[0].n);
    // Each master a little room above what it uses: the first keys are taken, later ones refused (OOM).
    for (const master of redis.nodes("master")) {
      const [, original] = (await master.config("GET", "maxmemory")) as [string, string];
      restore.push(() => master.config("SET", "maxmemory", original));
      const used = Number(/used_memory:(\d+)/.exec(await master.info("memory"))![1]);
      await master.config("SET", "maxmemory", String(used + 150_000));
    }
    const body = Array.from({ length: 20_000 }, (_, i) => JSON.stringify({ type: "email", value: `refused${i}@bulk.test`, reason: "a reason long enough to fill the masters' spare room quickly ".repeat(2) })).join("\n");
    let refused: unknown;
    try {
      refused = await blacklist.importEntries(body, { format: "ndjson", actor: "admin:kim@shopfds.test" }).then(() => undefined, (e: unknown) => e);
    } finally {
      for (const undo of restore.splice(0)) await undo();
    }
    assert.ok(refused instanceof BlacklistNotStoredError && refused.full, String(refused));
    assert.equal(Number((await db.query("SELECT count(*) AS n FROM blacklist_entries", [], { fresh: true })).rows[0].n), rowsBefore, "PostgreSQL rolled back");
    assert.equal(await keysOnMasters(), keysBefore, "the keys taken before the refusal were deleted again");
    assert.deepEqual((await blacklist.history({ type: "email", value: "refused0@bulk.test" })).events, []);
  });
});
