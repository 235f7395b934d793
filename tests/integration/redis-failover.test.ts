/**
 * Layer 3: Redis Cluster faults under a running stream of blacklist checks, on a cluster of this
 * file's own (other ports, a temporary directory; every node stopped by PID afterwards, pass or fail).
 * - SIGKILL of one master: its replica takes over within the failover window (printed); no check
 *   answers "not listed" for a listed value meanwhile (they fall back to PostgreSQL), no entry is lost.
 *   The reference service runs on the same cluster meanwhile: every order evaluation over HTTP answers
 *   (listed IPs blocked, others approved, no 5xx), and an admin session made before the kill still works.
 * - SIGKILL of two masters (majority lost, CLUSTERDOWN): checks fall back to PostgreSQL and still block.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Cluster } from "ioredis";
import { Database } from "../../runtime/db/router";
import { Blacklist } from "../../runtime/fds/blacklist";
import { loadStackOutputs, type RedisOutputs, type StackOutputs } from "../../runtime/outputs";
import { connectRedisCluster } from "../../runtime/redis/client";
import { REDIS_NODE_COUNT } from "../../components/redis/render";
import { clusterInfo, type LocalRedisOptions, redisNodePid, redisNodePort, startRedis, stopRedis, stopRedisNode } from "../../scripts/local-stack/redis";
import { createServer, type Server } from "node:http";
import { Writable } from "node:stream";
import { createLogger } from "../../runtime/observability/logger";
import { upsertAccount } from "../../service/shop/accounts";
import { buildServiceDeps, type ServiceDeps } from "../../service/deps";
import { createApp } from "../../service/http/app";
import { createMigratedDatabase, sleep, until } from "../support/databases";
import { testPorts } from "../support/ports";
import { devStackSettings } from "../../scripts/local-stack/stack";

const dir = mkdtempSync(path.join(tmpdir(), "shopfds-redis-failover-"));
const local: LocalRedisOptions = { dir, firstPort: testPorts("redisFailover") + 1, firstBusPort: testPorts("redisFailover") + 11, nodeTimeoutMs: devStackSettings().redis.nodeTimeoutMs, maxMemory: devStackSettings().redis.maxMemory };
const LISTED = Array.from({ length: 30 }, (_, i) => `198.18.0.${i + 1}`);
let outputs: StackOutputs;
let redisOutputs: RedisOutputs;
let redis: Cluster;
let db: Database;
let blacklist: Blacklist;
let deps: ServiceDeps | undefined;
let dropDb: () => Promise<void> = async () => undefined;
let server: Server | undefined;
let base = "";
let adminToken = "";
/** A node stopped by SIGSTOP, resumed in `after` should a test fail. */
let hung: number | undefined;

interface Answer {
  at: number;
  ip: string;
  listed: boolean;
  source: string;
  ms: number;
}

/** Checks listed IPs back to back until `stop()`; every answer is recorded. */
function checkLoop(checker: Blacklist = blacklist, ips: readonly string[] = LISTED): { answers: Answer[]; errors: unknown[]; stop: () => Promise<void> } {
  const answers: Answer[] = [];
  const errors: unknown[] = [];
  let running = true;
  const done = (async () => {
    for (let i = 0; running; i++) {
      const ip = ips[i % ips.length]!;
      const t = performance.now();
      try {
        const r = await checker.check({ ip });
        answers.push({ at: t, ip, listed: r.listed, source: r.source, ms: performance.now() - t });
      } catch (e) {
        errors.push(e);
      }
      await sleep(5);
    }
  })();
  return {
    answers,
    errors,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** Node index → is it a master now? (from CLUSTER NODES of a live node) */
async function masters(): Promise<number[]> {
  const nodes = redis.nodes("all");
  for (const n of nodes) {
    try {
      const text = (await n.call("CLUSTER", "NODES")) as string;
      return text
        .trim()
        .split("\n")
        .filter((l) => l.split(" ")[2]!.includes("master") && !l.split(" ")[2]!.includes("fail") && l.split(" ").length > 8)
        .map((l) => Number(l.split(" ")[1]!.split(":")[1]!.split("@")[0]) - local.firstPort);
    } catch {
      /* try the next node */
    }
  }
  throw new Error("no live node answered CLUSTER NODES");
}

before(async () => {
  outputs = await loadStackOutputs();
  const created = await createMigratedDatabase(outputs, `shopfds_failover_${process.pid}`);
  dropDb = created.drop;
  redisOutputs = await startRedis(local);
  // The reference service on this cluster, through its own wiring (service/deps.ts): a generous WAIT (the
  // whole suite shares 2 cores; the production default, 500 ms, is not under test here), the velocity
  // limit raised (one client sends every request), tasks to nowhere.
  deps = await buildServiceDeps(outputs, {
    service: "failover",
    log: createLogger({ service: "failover", environment: "dev", destination: new Writable({ write: (_c, _e, done) => done() }) }),
    postgres: created.postgres,
    redis: redisOutputs,
    blacklist: { checkTimeoutMs: 300, replicaAckTimeoutMs: 3000 },
    fds: { velocityLimit: 1_000_000, velocityTimeoutMs: 300 },
    jobs: { connected: true, send: async () => ({ id: "unused" }), sendOrDefer: async () => ({ id: "unused", deferred: false }) },
    health: { checks: "none" },
    defaultMetrics: false,
  });
  ({ db, redis, blacklist } = deps);
  for (const ip of LISTED) await blacklist.add({ type: "ip", value: ip, reason: "failover test", source: "test" });
  server = createServer(await createApp(deps));
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  await upsertAccount(db, { email: "ops@failover.test", password: "a long enough password", name: "Ops", role: "admin" });
  const login = await fetch(`${base}/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "ops@failover.test", password: "a long enough password" }) });
  adminToken = ((await login.json()) as { token: string }).token;
});

/** POST /fds/evaluate back to back, alternating a listed and an unlisted IP; every answer is recorded. */
function httpLoop(): { answers: { ip: string; listed: boolean; status: number; decision?: string }[]; stop: () => Promise<void> } {
  const answers: { ip: string; listed: boolean; status: number; decision?: string }[] = [];
  let running = true;
  const done = (async () => {
    for (let i = 0; running; i++) {
      const listed = i % 2 === 0;
      const ip = listed ? LISTED[(i / 2) % LISTED.length]! : `192.0.2.${(i % 250) + 1}`;
      const res = await fetch(`${base}/fds/evaluate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ amount: 1000, ip, email: "buyer@test.com" }) });
      const body = (await res.json()) as { decision?: string };
      answers.push({ ip, listed, status: res.status, decision: body.decision });
      await sleep(5);
    }
  })();
  return { answers, stop: async () => ((running = false), await done) };
}

after(async () => {
  if (hung) process.kill(hung, "SIGCONT");
  server?.close();
  await deps?.close();
  await stopRedis(local);
  rmSync(dir, { recursive: true, force: true });
  await dropDb();
});

describe("Redis Cluster faults during blacklist checks", () => {
  it("SC-002: a master hung (SIGSTOP): a client that only checks the blacklist answers from Redis again within about a second of the failover", async () => {
    // A client of its own with the shipped settings (connectRedisCluster, Blacklist defaults): it learns
    // the new topology only by itself, never from a write's MOVED.
    const client = connectRedisCluster(redisOutputs);
    const checker = new Blacklist(client, db, { cardHashKeys: outputs.fds.cardHashKeys });
    // And one that only GETs (as sessions are read), with no Blacklist refreshing its slot map: it finds
    // the new master through the refresh every timed-out command triggers (refreshSlotsOnTimeout), the
    // periodic one (every 5 s) being too rare for the bound.
    const reader = connectRedisCluster(redisOutputs);
    const reads: { at: number; ok: boolean; ms: number }[] = [];
    let reading = true;
    let readLoop: Promise<void> = Promise.resolve();
    try {
      const [victim] = await masters();
      const pid = redisNodePid(local, victim!);
      assert.ok(pid, "the victim's PID");
      for (const ip of LISTED) assert.equal((await checker.check({ ip })).source, "redis", "warm: every key's node connected");
      // Only keys the victim serves: the client then meets nothing but timeouts (no CLUSTERDOWN, no MOVED
      // from a healthy node), the case in which it never learned the new topology.
      const ranges = ((await redis.call("CLUSTER", "SLOTS")) as [number, number, [string, number]][]).filter((r) => r[2][1] === redisNodePort(local, victim!));
      const onVictim: string[] = [];
      for (const ip of LISTED) {
        const slot = Number(await redis.call("CLUSTER", "KEYSLOT", `fds:bl:ip:${ip}`));
        if (ranges.some(([from, to]) => slot >= from && slot <= to)) onVictim.push(ip);
      }
      assert.ok(onVictim.length >= 3, `listed IPs on the victim: ${onVictim.length}`);
      for (const ip of onVictim) await reader.get(`fds:bl:ip:${ip}`);
      const loop = checkLoop(checker, onVictim);
      const { answers } = loop;
      readLoop = (async () => {
        for (let i = 0; reading; i++) {
          const t = performance.now();
          const ok = await reader.get(`fds:bl:ip:${onVictim[i % onVictim.length]!}`).then(
            (v) => v !== null,
            () => false,
          );
          reads.push({ at: t, ok, ms: performance.now() - t });
          await sleep(5);
        }
      })();
      hung = pid;
      process.kill(pid!, "SIGSTOP");
      const stoppedAt = performance.now();
      const survivor = (victim! + 1) % REDIS_NODE_COUNT;
      // Failed over: three masters without the victim (its replica promoted) and every live node reports
      // the cluster ok again (between the victim's FAIL and the promotion every node says fail, and every
      // check falls back: that window is the cluster's, not the client's). The client is measured from there.
      const live = Array.from({ length: REDIS_NODE_COUNT }, (_, i) => i).filter((i) => i !== victim);
      await until("failover", 20_000, async () => (await Promise.all(live.map((i) => clusterInfo(local, i)))).every((info) => info.cluster_state === "ok") && (await masters()).length === 3 && !(await masters()).includes(victim!));
      const failedOverAt = performance.now();
      await until("every checked IP answered by Redis again", 15_000, async () => onVictim.every((ip) => answers.some((a) => a.ip === ip && a.at > failedOverAt && a.source === "redis")));
      await until("the plain reader served again", 15_000, async () => reads.some((r) => r.at > failedOverAt && r.ok));
      await sleep(1500);
      await loop.stop();
      reading = false;
      await readLoop;
      const readerBackAt = Math.max(failedOverAt, ...reads.filter((r) => !r.ok).map((r) => r.at + r.ms));
      console.log(`    a client that only GETs: back ${((readerBackAt - failedOverAt) / 1000).toFixed(2)} s after the failover (${reads.filter((r) => !r.ok).length} reads failed in all)`);
      // A timed-out GET triggers a slot-map read: about the command timeout (1 s) after the failover.
      assert.ok(readerBackAt - failedOverAt < 2500, `the plain reader back ${(readerBackAt - failedOverAt).toFixed(0)} ms after the failover`);
      assert.ok(reads.filter((r) => r.at > readerBackAt).every((r) => r.ok), "every GET answered once back");
      assert.deepEqual(loop.errors, [], "no check failed");
      // The client is back once no check started later falls back: the last fallback's start says when.
      const backAt = Math.max(failedOverAt, ...answers.filter((a) => a.source !== "redis").map((a) => a.at + a.ms));
      const afterBack = answers.filter((a) => a.at > backAt);
      const sorted = afterBack.map((a) => a.ms).sort((a, b) => a - b);
      const p99 = sorted[Math.floor(sorted.length * 0.99)] ?? Infinity;
      console.log(
        `    hung master ${victim}: failover ${((failedOverAt - stoppedAt) / 1000).toFixed(2)} s after SIGSTOP; checks back on Redis ${((backAt - failedOverAt) / 1000).toFixed(2)} s after the failover; ` +
          `then ${afterBack.length} checks, p99 ${p99.toFixed(1)} ms, ${afterBack.filter((a) => a.source !== "redis").length} not from Redis`,
      );
      assert.deepEqual(answers.filter((a) => !a.listed), [], "never a wrong 'not listed'");
      // By design about a second (a slot-map read after each 300 ms timeout, and every 5 s); the
      // bound leaves room for a loaded two-core machine (1.7 s measured with two test runs side by side).
      // Without the periodic refresh the client stays on the stopped master until it is woken.
      assert.ok(backAt - failedOverAt < 2500, `back on Redis ${(backAt - failedOverAt).toFixed(0)} ms after the failover (about a second expected)`);
      assert.deepEqual(afterBack.filter((a) => a.source !== "redis"), [], "Redis answers every check once back");
      assert.ok(p99 < 100, `p99 ${p99.toFixed(1)} ms after the failover (SC-002: 100 ms)`);
    } finally {
      reading = false;
      await readLoop;
      if (hung) process.kill(hung, "SIGCONT");
      hung = undefined;
      client.disconnect();
      reader.disconnect();
    }
    // The old master resumes as a replica of its successor: the cluster is whole again for the next test.
    await until("the resumed node rejoins", 20_000, async () => (await clusterInfo(local, 0)).cluster_state === "ok" && (await clusterInfo(local, 0)).cluster_known_nodes === "6" && (await masters()).length === 3);
  });

  it("US2-4 (SC-003, FR-014): one master SIGKILLed: failover inside 10 s, never a wrong 'not listed', no entry lost", async () => {
    const [victim] = await masters();
    assert.notEqual(victim, undefined);
    const loop = checkLoop();
    const http = httpLoop();
    await sleep(300);
    const killedAt = performance.now();
    await stopRedisNode(local, victim!, "SIGKILL");
    const survivor = (victim! + 1) % REDIS_NODE_COUNT;
    // Failed over: the victim's replica holds its slots (the victim no longer counts as a master) and
    // the cluster is ok again.
    const failoverMs = await until("failover", 15_000, async () => {
      if ((await clusterInfo(local, survivor)).cluster_state !== "ok") return false;
      const now = await masters();
      return now.length === 3 && !now.includes(victim!);
    });
    // Checks are back on Redis once every listed IP has been answered by Redis again after the failover.
    const resumedMs = await until("checks answered by Redis again", 15_000, async () => {
      const after = loop.answers.filter((a) => a.at > killedAt + failoverMs);
      return LISTED.every((ip) => after.some((a) => a.ip === ip && a.source === "redis"));
    });
    await loop.stop();
    await http.stop();

    const during = loop.answers.filter((a) => a.at >= killedAt);
    const wrong = loop.answers.filter((a) => !a.listed);
    const fellBack = during.filter((a) => a.source === "postgres").length;
    console.log(
      `    failover: cluster ok ${(failoverMs / 1000).toFixed(2)} s after SIGKILL of node ${victim} (${redisNodePort(local, victim!)}); ` +
        `checks back on Redis ${((failoverMs + resumedMs) / 1000).toFixed(2)} s after it; ${during.length} checks meanwhile, ` +
        `${fellBack} answered by PostgreSQL, slowest ${Math.max(...during.map((a) => a.ms)).toFixed(0)} ms`,
    );
    assert.deepEqual(loop.errors, [], "no check failed");
    assert.deepEqual(wrong, [], "no listed value was answered 'not listed'");
    assert.ok(failoverMs < 10_000, `failover took ${failoverMs} ms (FR-014: under 10 s)`);
    // Through the service: every evaluation answered 200, the listed IPs blocked, the others approved.
    console.log(`    through the service: ${http.answers.length} evaluations over HTTP across the failover`);
    assert.ok(http.answers.length > 20);
    assert.deepEqual(http.answers.filter((a) => a.status !== 200 || a.decision !== (a.listed ? "block" : "approve")), []);
    const session = await fetch(`${base}/v1/admin/blacklist?type=ip&limit=1`, { headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(session.status, 200, "the admin session made before the kill still works after the failover");
    for (const ip of LISTED) {
      const r = await blacklist.check({ ip });
      assert.deepEqual([r.listed, r.source], [true, "redis"], `${ip} survived the failover in Redis`);
    }
  });

  it("edge case: two masters SIGKILLed (majority lost): checks fall back to PostgreSQL and still block", async () => {
    const live = await masters();
    assert.ok(live.length >= 2, `live masters: ${live}`);
    const [a, b, last] = live as [number, number, number];
    const loop = checkLoop();
    await sleep(200);
    const killedAt = performance.now();
    await Promise.all([stopRedisNode(local, a, "SIGKILL"), stopRedisNode(local, b, "SIGKILL")]);
    // The last master, cut off from the majority, declares the cluster down after the node timeout.
    const downMs = await until("CLUSTERDOWN on the last master", 15_000, async () => (await clusterInfo(local, last)).cluster_state === "fail");
    const downAt = performance.now();
    await sleep(1000);
    await loop.stop();
    const whileDown = loop.answers.filter((x) => x.at > downAt);
    console.log(
      `    majority lost: cluster down ${(downMs / 1000).toFixed(2)} s after killing nodes ${a} and ${b}; ${loop.answers.filter((x) => x.at >= killedAt).length} checks since, ` +
        `${loop.answers.filter((x) => x.source === "postgres").length} answered by PostgreSQL; while down: ${whileDown.length} checks, median ${whileDown.map((x) => x.ms).sort((p, q) => p - q)[Math.floor(whileDown.length / 2)]?.toFixed(0)} ms`,
    );
    assert.deepEqual(loop.errors, []);
    assert.deepEqual(loop.answers.filter((x) => !x.listed), [], "every listed IP still blocked");
    assert.ok(whileDown.length > 0 && whileDown.every((x) => x.source === "postgres"), "while the cluster is down, PostgreSQL answers every check");
    assert.ok(blacklist.stats().fallbacks > 0);
    assert.match(blacklist.stats().lastFallback?.reason ?? "", /./);
    // The service while the cluster is down: FDS still blocks (PostgreSQL), a login cannot make a session: 503, not 500.
    const evaluation = await fetch(`${base}/fds/evaluate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ amount: 1000, ip: LISTED[0], email: "buyer@test.com" }) });
    assert.deepEqual([evaluation.status, ((await evaluation.json()) as { decision: string }).decision], [200, "block"]);
    const login = await fetch(`${base}/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "ops@failover.test", password: "a long enough password" }) });
    const body = (await login.json()) as { error: { code: string } };
    assert.deepEqual([login.status, body.error.code, login.headers.get("retry-after")], [503, "SERVICE_UNAVAILABLE", "5"]);
  });
});
