/**
 * End to end: RabbitMQ stopped and started under order load, with the service, a worker and the
 * scheduler as their own processes (what `make dev` runs), on a broker, database, directory and ports of
 * this file's own. Nothing is restarted but the broker. Proves: no order lost and none doubled (every
 * 201 is one row, every row a 201), no 500 (an order refused before anything is written is a 503 with
 * Retry-After), every accepted order's e-mail sent exactly once, orders accepted again within seconds of
 * the broker's return, the service's /health and the worker's liveness following the broker.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { appLogFile, type LocalAppsOptions, serviceUrl } from "../../scripts/local-stack/apps";
import { giveToServiceUser, isAlive } from "../../scripts/local-stack/process";
import { type LocalRabbitOptions, startRabbit, stopRabbit } from "../../scripts/local-stack/rabbitmq";
import { mailDir } from "../../scripts/local-stack/smtp";
import { profile, smtpOptions } from "../../scripts/local-stack/stack";
import { sleep, until } from "../support/databases";
import { type OrderEnvironment, postOrder, startOrderEnvironment } from "../support/order-environment";
import { testPorts } from "../support/ports";

const dir = mkdtempSync(path.join(tmpdir(), "shopfds-restart-"));
giveToServiceUser(dir);
const P = testPorts("brokerRestart");
const rabbit: LocalRabbitOptions = { dir: path.join(dir, "rabbitmq"), firstPort: P + 72, name: `shopfds-restart-${P}` };
const apps: LocalAppsOptions = { dir: path.join(dir, "apps"), outputsFile: path.join(dir, "outputs.json"), servicePort: P, workerMetricsPort: P + 1, targetsFile: path.join(dir, "targets.json") };
const BUYERS = `restart-${process.pid}-`; // buyer i is restart-<pid>-<i>@test.com
let db: pg.Client;
let userIds: number[] = [];
let pids: number[] = [];

interface Attempt {
  at: number;
  status: number;
  orderId?: number;
  code?: string;
  retryAfter?: string | null;
}

let env: OrderEnvironment | undefined;

before(async () => {
  env = await startOrderEnvironment({ name: "restart", dir, rabbit, apps, buyers: BUYERS, sku: "restart-1" });
  ({ db, userIds, pids } = env);
});

after(async () => {
  await env?.teardown();
});

const mailsFor = (orderId: number): number => {
  const sink = mailDir(smtpOptions(profile("test")));
  if (!existsSync(sink)) return 0;
  return readdirSync(sink).filter((f) => {
    if (f.startsWith(".")) return false;
    const text = readFileSync(path.join(sink, f), "utf8");
    return text.includes(`order #${orderId} confirmed`) && text.includes(BUYERS);
  }).length;
};

describe("RabbitMQ restarted under order load", () => {
  it("no order lost or doubled, every e-mail once, orders accepted again within seconds, no process restarted", { timeout: 180_000 }, async () => {
    const attempts: Attempt[] = [];
    const live: { at: number; service: number; worker: number }[] = [];
    let running = true;
    const load = (async () => {
      for (let i = 0; running; i++) {
        const at = performance.now();
        const res = await postOrder(serviceUrl(apps), { userIds }, BUYERS, i);
        const body = (await res.json()) as { orderId?: number; error?: { code: string } };
        attempts.push({ at, status: res.status, orderId: body.orderId, code: body.error?.code, retryAfter: res.headers.get("retry-after") });
        await sleep(Math.max(0, 200 - (performance.now() - at))); // 5 orders a second
      }
    })();
    const probe = (async () => {
      while (running) {
        const [service, worker] = await Promise.all([fetch(`${serviceUrl(apps)}/health`).then((r) => r.status), fetch(`http://127.0.0.1:${apps.workerMetricsPort}/health/live`).then((r) => r.status)]);
        live.push({ at: performance.now(), service, worker });
        await sleep(250);
      }
    })();

    await sleep(2000);
    const stoppedAt = performance.now();
    await stopRabbit(rabbit);
    await sleep(3000);
    await startRabbit(rabbit);
    const backAt = performance.now();
    await until("an order accepted after the broker's return", 20_000, async () => attempts.some((a) => a.at > backAt && a.status === 201));
    const acceptedAgainMs = Math.min(...attempts.filter((a) => a.at > backAt && a.status === 201).map((a) => a.at)) - backAt;
    await sleep(3000);
    running = false;
    await Promise.all([load, probe]);

    const outage = attempts.filter((a) => a.at >= stoppedAt && a.at <= backAt);
    const accepted = attempts.filter((a) => a.status === 201);
    console.log(
      `    ${attempts.length} orders tried: ${accepted.length} accepted (${outage.filter((a) => a.status === 201).length} during the ${((backAt - stoppedAt) / 1000).toFixed(1)} s outage), ` +
        `${attempts.filter((a) => a.status === 503).length} refused with 503; accepted again ${(acceptedAgainMs / 1000).toFixed(2)} s after the broker was back`,
    );
    assert.deepEqual(attempts.filter((a) => a.status !== 201 && a.status !== 503), [], "no 500, nothing but 201 or 503");
    assert.deepEqual(attempts.filter((a) => a.status === 503 && (a.code !== "SERVICE_UNAVAILABLE" || !a.retryAfter)), [], "a 503 says so and gives Retry-After");
    assert.ok(outage.length > 10, "orders were placed during the outage");
    assert.ok(acceptedAgainMs < 5000, `accepted again ${acceptedAgainMs.toFixed(0)} ms after the broker's return`);
    assert.ok(attempts.filter((a) => a.at > backAt + acceptedAgainMs).every((a) => a.status === 201), "once accepted again, every order is");

    // None lost, none doubled: the database holds exactly the accepted orders.
    const rows = (await db.query("SELECT id FROM orders ORDER BY id")).rows.map((r) => Number(r.id));
    assert.deepEqual(rows, accepted.map((a) => a.orderId).sort((a, b) => a! - b!));
    // Every accepted order's e-mail, exactly once (the ones kept during the outage sent on reconnect).
    await until("every accepted order's e-mail", 60_000, async () => accepted.every((a) => mailsFor(a.orderId!) >= 1));
    await sleep(1000);
    assert.deepEqual(accepted.map((a) => [a.orderId, mailsFor(a.orderId!)]).filter(([, n]) => n !== 1), [], "one e-mail per order");
    assert.equal((await db.query("SELECT count(*)::int AS n FROM task_log WHERE state <> 'done'")).rows[0].n, 0, "the outbox is drained");

    // The processes followed the broker by themselves.
    assert.deepEqual(pids.filter((pid) => !isAlive(pid)), [], "no process died or was restarted");
    assert.ok(live.some((l) => l.at > stoppedAt && l.at < backAt && l.service === 503), "/health failed while the broker was away");
    assert.ok(live.some((l) => l.at > stoppedAt && l.at < backAt && l.worker === 503), "the worker's liveness failed while it could not consume");
    assert.deepEqual(live.slice(-2).map((l) => [l.service, l.worker]), [[200, 200], [200, 200]], "both healthy again");
    for (const app of ["worker", "scheduler"] as const) {
      const lines = readFileSync(appLogFile(apps, app), "utf8");
      assert.match(lines, /broker connection lost: .*; reconnecting/, `${app} noticed the loss`);
      assert.match(lines, /broker connection \(re\)established/, `${app} reconnected by itself`);
    }
  });
});
