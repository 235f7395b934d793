/**
 * Layer 3: the local stack's real 6-node Redis Cluster, and the blacklist, sessions and FDS decision on
 * it (with the blacklist's PostgreSQL copy in a database of this file's own).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import Redis, { type Cluster } from "ioredis";
import { Database } from "../../runtime/db/router";
import { Blacklist, BlacklistInputError } from "../../runtime/fds/blacklist";
import { cardHash, InvalidValueError } from "../../runtime/fds/canonical";
import { FraudDetector } from "../../runtime/fds/evaluate";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { connectRedisCluster } from "../../runtime/redis/client";
import { SessionStore } from "../../runtime/redis/sessions";
import { createMigratedDatabase, sleep, until } from "../support/databases";

interface NodeLine {
  id: string;
  addr: string;
  master: boolean;
  masterId: string;
  slots: number;
}

let outputs: StackOutputs;
let redis: Cluster;
let db: Database;
let blacklist: Blacklist;
let dropDb: () => Promise<void>;
const direct = new Map<string, Redis>();
const PREFIX = `t${process.pid}:`;

function node(addr: string): Redis {
  let c = direct.get(addr);
  if (!c) {
    const [host, port] = addr.split(":");
    c = new Redis({ host, port: Number(port), password: outputs.redis.password, lazyConnect: false });
    direct.set(addr, c);
  }
  return c;
}

async function topology(): Promise<NodeLine[]> {
  const first = outputs.redis.nodes[0]!;
  const text = (await node(`${first.host}:${first.port}`).call("CLUSTER", "NODES")) as string;
  return text
    .trim()
    .split("\n")
    .map((line) => {
      const [id, addr, flags, masterId, , , , , ...slots] = line.split(" ");
      const count = slots.reduce((n, s) => {
        const [a, b] = s.split("-").map(Number);
        return n + (b === undefined ? 1 : b - (a as number) + 1);
      }, 0);
      return { id: id!, addr: addr!.split("@")[0]!.split(",")[0]!, master: flags!.includes("master"), masterId: masterId!, slots: count };
    });
}

before(async () => {
  outputs = await loadStackOutputs();
  const created = await createMigratedDatabase(outputs, `shopfds_redis_${process.pid}`);
  dropDb = created.drop;
  db = await Database.connect(created.postgres);
  redis = connectRedisCluster(outputs.redis);
  blacklist = new Blacklist(redis, db, { cardHashKeys: outputs.fds.cardHashKeys, keyPrefix: `${PREFIX}bl:` });
});

after(async () => {
  redis.disconnect();
  for (const c of direct.values()) c.disconnect();
  await db.close();
  await dropDb();
});

describe("the local Redis Cluster", () => {
  it("is ok on every node, with 6 known nodes", async () => {
    for (const n of outputs.redis.nodes) {
      const info = (await node(`${n.host}:${n.port}`).call("CLUSTER", "INFO")) as string;
      assert.match(info, /^cluster_state:ok\r?$/m, `${n.port}`);
      assert.match(info, /^cluster_known_nodes:6\r?$/m, `${n.port}`);
    }
  });

  it("has 3 masters holding 5461 or 5462 slots each, and one replica per master", async () => {
    const nodes = await topology();
    const masters = nodes.filter((n) => n.master);
    assert.equal(masters.length, 3);
    assert.deepEqual(masters.map((m) => m.slots).sort(), [5461, 5461, 5462]);
    for (const m of masters) assert.equal(nodes.filter((n) => n.masterId === m.id).length, 1, `replicas of ${m.addr}`);
  });

  it("refuses clients without the password", async () => {
    const n = outputs.redis.nodes[0]!;
    const { stdout } = await promisify(execFile)("redis-cli", ["-h", n.host, "-p", String(n.port), "get", "x"], { env: { PATH: process.env.PATH } });
    assert.match(stdout, /NOAUTH/);
  });
});

describe("blacklist on the cluster", () => {
  it("US2-1: spreads entries over the masters, and a replica holds each one as soon as add() returns (WAIT)", async () => {
    const nodes = await topology();
    const masters = new Set<string>();
    for (let i = 1; i <= 12; i++) {
      const ip = `198.51.100.${i}`;
      await blacklist.add({ type: "ip", value: ip, reason: "spread test", source: "test" });
      const key = `${PREFIX}bl:ip:${ip}`;
      const slot = (await redis.call("CLUSTER", "KEYSLOT", key)) as number;
      const owner = (await redis.call("CLUSTER", "SLOTS")) as [number, number, [string, number, string], ...[string, number, string][]][];
      const range = owner.find(([a, b]) => slot >= a && slot <= b)!;
      const masterAddr = `${range[2][0]}:${range[2][1]}`;
      masters.add(masterAddr);
      const replica = nodes.find((n) => n.masterId === nodes.find((m) => m.addr === masterAddr)!.id)!;
      const r = node(replica.addr);
      await r.call("READONLY");
      assert.notEqual(await r.get(key), null, `replica ${replica.addr} has ${key} right after add()`);
    }
    assert.equal(masters.size, 3, "12 entries land on all 3 masters");
  });

  it("checks IP, e-mail and card together, and names the matches", async () => {
    await blacklist.add({ type: "email", value: " Mallory@Example.com ", reason: "chargebacks", source: "manual" });
    await blacklist.add({ type: "card", value: "4000 0000 0000 0002", reason: "stolen card", source: "issuer" });
    const hit = await blacklist.check({ ip: "203.0.113.9", email: "mallory@example.com", card: "4000000000000002" });
    assert.equal(hit.source, "redis");
    assert.deepEqual(hit.matches.map((m) => [m.type, m.reason]).sort(), [["card", "stolen card"], ["email", "chargebacks"]]);
    const card = hit.matches.find((m) => m.type === "card")!;
    assert.equal(card.value, cardHash("4000000000000002", outputs.fds.cardHashKeys[0]!), "the card is known only by its keyed hash");
    assert.equal(card.keyVersion, 1);
    const miss = await blacklist.check({ ip: "203.0.113.9", email: "alice@example.com", card: "4111111111111111" });
    assert.deepEqual(miss, { listed: false, matches: [], allowed: [], overridden: [], source: "redis" });
  });

  it("writes through to PostgreSQL, where no card number appears", async () => {
    const { rows } = await db.query("SELECT entry_type, value, key_version FROM blacklist_entries WHERE entry_type = 'card'", [], { fresh: true });
    assert.equal(rows.length, 1);
    assert.equal(rows[0].key_version, 1);
    assert.ok(!rows[0].value.includes("4000000000000002"));
  });

  it("an entry added through one client is seen by another client's very next check (FR-012)", async () => {
    const other = connectRedisCluster(outputs.redis);
    try {
      const otherBlacklist = new Blacklist(other, db, { cardHashKeys: outputs.fds.cardHashKeys, keyPrefix: `${PREFIX}bl:` });
      assert.equal((await otherBlacklist.check({ ip: "192.0.2.77" })).listed, false);
      await blacklist.add({ type: "ip", value: "192.0.2.77", reason: "real time", source: "test" });
      assert.equal((await otherBlacklist.check({ ip: "192.0.2.77" })).listed, true);
    } finally {
      other.disconnect();
    }
  });

  it("US2-3: expires an entry at its TTL in Redis and in PostgreSQL, with no sweeper", async () => {
    const entry = await blacklist.add({ type: "ip", value: "2001:db8::dead", reason: "short", source: "test", ttlSeconds: 1 });
    assert.equal(entry.expiresAt.getTime() - entry.createdAt.getTime(), 1000);
    assert.equal((await blacklist.check({ ip: "2001:DB8:0::DEAD" })).listed, true);
    await sleep(1100);
    assert.equal((await blacklist.check({ ip: "2001:db8::dead" })).listed, false);
    assert.equal(await redis.exists(`${PREFIX}bl:ip:2001:db8::dead`), 0, "Redis dropped the key itself");
    assert.deepEqual((await blacklist.list("ip")).entries.filter((e) => e.value === "2001:db8::dead"), []);
  });

  it("changes a TTL, removes entries, and pages through a listing", async () => {
    const changed = await blacklist.changeTtl("email", "mallory@example.com", 3600);
    assert.ok(Math.abs(changed.expiresAt.getTime() - Date.now() - 3600_000) < 5000);
    const pttl = await redis.pttl(`${PREFIX}bl:email:mallory@example.com`);
    assert.ok(pttl > 3590_000 && pttl <= 3600_000, `pttl ${pttl}`);

    const first = await blacklist.list("ip", { limit: 5 });
    assert.equal(first.entries.length, 5);
    const second = await blacklist.list("ip", { limit: 5, after: first.next });
    assert.ok(second.entries.every((e) => e.id > first.next!));
    assert.equal(new Set([...first.entries, ...second.entries].map((e) => e.value)).size, 10);

    assert.equal(await blacklist.remove("card", "4000-0000-0000-0002"), true);
    assert.equal((await blacklist.check({ card: "4000000000000002" })).listed, false);
    assert.equal(await blacklist.remove("card", "4000-0000-0000-0002"), false);
  });

  it("rejects bad input with the field and the problem, and writes nothing", async () => {
    const count = async () => Number((await db.query("SELECT count(*) AS n FROM blacklist_entries", [], { fresh: true })).rows[0].n);
    const before = await count();
    const keysBefore = (await Promise.all(redis.nodes("master").map((m) => m.dbsize()))).reduce((a, b) => a + b, 0);
    const cases: [Parameters<Blacklist["add"]>[0], RegExp][] = [
      [{ type: "ip", value: "300.1.1.1", reason: "r", source: "s" }, /^value: must be an IPv4 or IPv6 address \(got "300\.1\.1\.1"\)$/],
      [{ type: "email", value: "not-an-email", reason: "r", source: "s" }, /^value: must be an e-mail address \(got "not-an-email"\)$/],
      [{ type: "card", value: "4111 1111 1111", reason: "r", source: "s" }, /^value: fails the Luhn check \(mistyped number\?\)$/],
      [{ type: "card", value: "4111", reason: "r", source: "s" }, /^value: must have 12 to 19 digits \(got 4\)$/],
      [{ type: "phone" as never, value: "1", reason: "r", source: "s" }, /^invalid blacklist input: type: must be one of ip, email, card \(got "phone"\)$/],
      [{ type: "ip", value: "192.0.2.1", reason: "r", source: "s", ttlSeconds: -60 }, /^invalid blacklist input: ttlSeconds: must be a positive integer \(got -60\)$/],
    ];
    for (const [input, message] of cases) {
      await assert.rejects(blacklist.add(input), (e: Error) => (e instanceof InvalidValueError || e instanceof BlacklistInputError) && message.test(e.message));
    }
    await assert.rejects(blacklist.changeTtl("ip", "198.51.100.1", 0), /ttlSeconds: must be a positive integer \(got 0\)/);
    assert.equal(await count(), before);
    const keysAfter = (await Promise.all(redis.nodes("master").map((m) => m.dbsize()))).reduce((a, b) => a + b, 0);
    assert.equal(keysAfter, keysBefore);
  });
});

describe("sessions", () => {
  it("creates, reads, touches and destroys a session", async () => {
    const sessions = new SessionStore<{ userId: number }>(redis, { keyPrefix: `${PREFIX}sess:` });
    assert.equal(sessions.ttlMs, 30 * 60 * 1000, "30 minutes after login by default (FR-013)");
    const s = await sessions.create({ userId: 7 });
    assert.deepEqual(await sessions.get(s.id), { userId: 7 });
    const ttl = await redis.pttl(`${PREFIX}sess:${s.id}`);
    assert.ok(ttl > 29 * 60 * 1000 && ttl <= 30 * 60 * 1000, `pttl ${ttl}`);
    assert.equal(await sessions.touch(s.id), true);
    assert.equal(await sessions.destroy(s.id), true);
    assert.equal(await sessions.get(s.id), undefined);
    assert.equal(await sessions.get("../../etc/passwd"), undefined, "malformed ids are never looked up");
  });

  it("US2-5: expires a session at its TTL", async () => {
    const sessions = new SessionStore<{ userId: number }>(redis, { keyPrefix: `${PREFIX}sess:`, ttlMs: 300 });
    const s = await sessions.create({ userId: 8 });
    assert.deepEqual(await sessions.get(s.id), { userId: 8 });
    await until("session expiry", 2000, async () => (await sessions.get(s.id)) === undefined);
    assert.equal(await sessions.touch(s.id), false, "an expired session cannot be revived");
  });
});

describe("the FDS decision", () => {
  let fds: FraudDetector;
  before(() => {
    fds = new FraudDetector(blacklist, redis, outputs.fds.cardHashKeys, { velocityLimit: 3, velocityKeyPrefix: `${PREFIX}vel:` });
  });

  it("US2-2: blocks a transaction from a blacklisted IP as high risk", async () => {
    await blacklist.add({ type: "ip", value: "203.0.113.66", reason: "botnet", source: "test" });
    const e = await fds.evaluate({ userId: 1, amount: 10_000, ip: "203.0.113.66", email: "bob@example.com" });
    assert.deepEqual([e.score, e.level, e.decision, e.blacklistSource], [100, "high", "block", "redis"]);
    assert.equal(e.factors[0]?.rule, "blacklist");
  });

  it("approves an ordinary one, asks for more authentication on a large amount", async () => {
    const ok = await fds.evaluate({ userId: 2, amount: 10_000, ip: "192.0.2.10", email: "carol@example.com", card: "4111111111111111" });
    assert.deepEqual([ok.score, ok.level, ok.decision, ok.factors], [0, "low", "approve", []]);
    const big = await fds.evaluate({ userId: 3, amount: 5_000_000, ip: "192.0.2.11", email: "dave@example.com" });
    assert.deepEqual([big.score, big.level, big.decision], [50, "medium", "additional_auth"]);
  });

  it("counts velocity per user across evaluations", async () => {
    const tx = { userId: 99, amount: 1_000_000, ip: "192.0.2.12", email: "erin@example.com" };
    for (let i = 0; i < 3; i++) assert.equal((await fds.evaluate(tx)).score, 30);
    const fourth = await fds.evaluate(tx);
    assert.deepEqual([fourth.score, fourth.level, fourth.decision], [100, "high", "block"], "30 (amount) + 40 (user) + 40 (IP), capped");
    // Each count carries its expiry (twice the 600 s window, set when the key was made): no counter lives for ever.
    const bucket = Math.floor(Date.now() / 1000 / 600);
    for (const key of [`${PREFIX}vel:user:99:${bucket}`, `${PREFIX}vel:ip:192.0.2.12:${bucket}`]) {
      assert.equal(await redis.get(key), "4", key);
      const ttl = await redis.pttl(key);
      assert.ok(ttl > 1_190_000 && ttl <= 1_200_000, `${key}: expires in ${ttl} ms`);
    }
  });

  it("names a bad field", async () => {
    await assert.rejects(fds.evaluate({ amount: -1, ip: "192.0.2.1", email: "a@b.co" }), { message: "amount: must not be negative (got -1)" });
    await assert.rejects(fds.evaluate({ amount: 1, ip: "192.0.2.1", email: "a@b.co", card: "1234567812345678" }), { message: "card: fails the Luhn check (mistyped number?)" });
  });
});
