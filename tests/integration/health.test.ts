/**
 * Layer 3: the runtime's health endpoint against a local stack of this file's own (ports 274xx, a
 * temporary directory; every server stopped by PID afterwards), with each dependency taken down in
 * turn: the right check fails and the status and HTTP code follow; a hung (SIGSTOPped) primary never
 * makes /health wait.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Cluster } from "ioredis";
import { Database } from "../../runtime/db/router";
import { diskCheck, postgresChecks, rabbitMqCheck, redisClusterCheck } from "../../runtime/health/checks";
import { HealthMonitor, type HealthReport } from "../../runtime/health/health";
import type { StackOutputs } from "../../runtime/outputs";
import { connectRedisCluster } from "../../runtime/redis/client";
import { giveToServiceUser } from "../../scripts/local-stack/process";
import { startMember, stopMember } from "../../scripts/local-stack/postgres";
import { postmasterPid } from "../../scripts/local-stack/process";
import { startRedisNode, stopRedisNode } from "../../scripts/local-stack/redis";
import { startRabbit, stopRabbit } from "../../scripts/local-stack/rabbitmq";
import { TaskProducer } from "../../runtime/jobs/producer";
import { cleanStack, postgresOptions, rabbitOptions, redisOptions, startStack, type LocalStackProfile } from "../../scripts/local-stack/stack";
import { until } from "../support/databases";
import { testPorts } from "../support/ports";

const parent = mkdtempSync(path.join(tmpdir(), "shopfds-health-"));
giveToServiceUser(parent);
const stack: LocalStackProfile = { name: "health", dir: path.join(parent, "stack"), portBase: testPorts("health") };
let outputs: StackOutputs;
let db: Database;
let redis: Cluster;
let monitor: HealthMonitor;
let producer: TaskProducer;
let server: Server;
let base = "";
let stoppedPrimary: number | undefined;
const KEPT = "0b6e4a8e-5b55-4a4e-9d1c-2f4e8f2b9a01";

/** Signals a PostgreSQL server and its backends (each backend is its own session, so not a group). */
function signalServer(pid: number, signal: NodeJS.Signals): void {
  const children = execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number);
  for (const p of [pid, ...children]) process.kill(p, signal);
}

async function get(route = "/health"): Promise<{ code: number; body: HealthReport; ms: number; type: string | null }> {
  const started = performance.now();
  const res = await fetch(`${base}${route}`);
  const body = (await res.json()) as HealthReport;
  return { code: res.status, body, ms: performance.now() - started, type: res.headers.get("content-type") };
}
const checkStatus = async (name: string) => (await get()).body.checks[name]?.[0]?.status;

before(async () => {
  ({ outputs } = await startStack(stack));
  db = await Database.connect({ ...outputs.postgres, lagCheckIntervalMs: 200, probeIntervalMs: 200 });
  redis = connectRedisCluster(outputs.redis);
  producer = await TaskProducer.connect(outputs.rabbitmq.url, { maxReconnectDelayMs: 500 });
  monitor = await new HealthMonitor([...postgresChecks(db), redisClusterCheck(redis), rabbitMqCheck(producer), diskCheck(parent)], { intervalMs: 300, timeoutMs: 300, serviceId: "health-test" }).start();
  const health = monitor.handler("health");
  const live = monitor.handler("live");
  server = createServer((req, res) => (req.url === "/health/live" ? live(req, res) : health(req, res)));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(async () => {
  if (stoppedPrimary) signalServer(stoppedPrimary, "SIGCONT");
  monitor?.stop();
  server?.close();
  redis?.disconnect();
  await producer?.close();
  await db?.close().catch(() => undefined);
  await cleanStack(stack);
  rmSync(parent, { recursive: true, force: true });
});

describe("health endpoint", () => {
  it("US4-5: passes with every dependency up: application/health+json, one entry per check with observed values", async () => {
    const r = await get();
    assert.equal(r.code, 200);
    assert.equal(r.type, "application/health+json");
    assert.equal(r.body.status, "pass");
    assert.deepEqual(Object.keys(r.body.checks).sort(), ["disk:utilization", "postgres:primary", "postgres:replica-1:lag", "rabbitmq:queue", "redis:cluster"]);
    assert.equal(r.body.checks["redis:cluster"]![0]!.observedValue, "ok");
    assert.equal(typeof r.body.checks["postgres:replica-1:lag"]![0]!.observedValue, "number");
    assert.equal((await get("/health/live")).body.status, "pass");
  });

  it("a stopped replica fails its check but only warns the service (reads fall back): 200", async () => {
    await stopMember(postgresOptions(stack), "replica-1");
    await until("replica check fails", 10_000, async () => (await checkStatus("postgres:replica-1:lag")) === "fail");
    const r = await get();
    assert.deepEqual([r.code, r.body.status], [200, "warn"]);
    await startMember(postgresOptions(stack), "replica-1");
    await until("replica check passes again", 15_000, async () => (await checkStatus("postgres:replica-1:lag")) === "pass");
  });

  it("US4-5 (SC-010): a hung primary (SIGSTOP) never makes /health wait: answers within 100 ms, then fails with 503", async () => {
    stoppedPrimary = postmasterPid(path.join(postgresOptions(stack).dir, "primary", "data"));
    assert.ok(stoppedPrimary);
    signalServer(stoppedPrimary, "SIGSTOP");
    const times: number[] = [];
    await until("primary check fails", 10_000, async () => {
      const r = await get();
      times.push(r.ms);
      return r.body.checks["postgres:primary"]![0]!.status === "fail";
    });
    for (let i = 0; i < 20; i++) times.push((await get()).ms);
    const r = await get();
    assert.deepEqual([r.code, r.body.status], [503, "fail"]);
    assert.match(r.body.checks["postgres:primary"]![0]!.output ?? "", /no answer within 300 ms|hung/);
    console.log(`    /health while the primary hangs: ${times.length} requests, slowest ${Math.max(...times).toFixed(1)} ms`);
    assert.ok(Math.max(...times) < 100, `slowest answer ${Math.max(...times)} ms`);
    signalServer(stoppedPrimary, "SIGCONT");
    stoppedPrimary = undefined;
    await until("primary passes again", 15_000, async () => (await checkStatus("postgres:primary")) === "pass");
  });

  it("Redis Cluster down (two masters stopped): the cluster check fails, 503", async () => {
    const r = redisOptions(stack);
    await Promise.all([stopRedisNode(r, 0, "SIGKILL"), stopRedisNode(r, 1, "SIGKILL")]);
    await until("redis check fails", 15_000, async () => (await checkStatus("redis:cluster")) === "fail");
    assert.equal((await get()).code, 503);
    await Promise.all([startRedisNode(r, 0), startRedisNode(r, 1)]);
    await until("redis check passes again", 20_000, async () => (await checkStatus("redis:cluster")) === "pass");
  });

  it("RabbitMQ stopped: the broker check fails, 503", async () => {
    await stopRabbit(rabbitOptions(stack));
    await until("rabbitmq check fails", 10_000, async () => (await checkStatus("rabbitmq:queue")) === "fail");
    const r = await get();
    assert.deepEqual([r.code, r.body.status], [503, "fail"]);
    assert.equal((await get("/health/live")).code, 200, "liveness is the process only");
    await assert.rejects(producer.send("any.task"), /RabbitMQ is not reachable now/);
    // Work already committed (an order's e-mail) is kept for the broker's return instead of failing.
    assert.deepEqual(await producer.sendOrDefer("health.kept", [], {}, { id: KEPT }), { id: KEPT, deferred: true });
    assert.equal(producer.pendingDeferred, 1);
  });

  it("RabbitMQ back: the check passes again on the same producer, which reconnected by itself and sends again", async () => {
    await startRabbit(rabbitOptions(stack));
    await until("rabbitmq check passes again", 20_000, async () => (await checkStatus("rabbitmq:queue")) === "pass");
    assert.equal((await get()).code, 200);
    const sent = await producer.send("health.probe", [], {}, { queue: "celery" });
    assert.match(sent.id, /^[0-9a-f-]{36}$/);
    // The kept task went out on reconnect, then the probe: the queue depth, read over the producer's
    // own connection (checks run every 300 ms), counts both.
    await until("the check to see both tasks waiting", 5000, async () => (await get()).body.checks["rabbitmq:queue"]![0]!.observedValue === 2);
    assert.equal(producer.pendingDeferred, 0);
  });
});
