/**
 * End to end: a real RabbitMQ resource alarm (the node's own `set_vm_memory_high_watermark 0`: the
 * broker blocks every connection that publishes) held 12 s under order load, with the service, a worker
 * and the scheduler as their own processes, on a broker, database, directory and ports of this file's
 * own. Proves: every order answered without waiting for the alarm (201, its e-mail kept for the unblock:
 * the order path's bound is the producer's confirm bound, 2 s), none lost or doubled, /health warning
 * that the broker blocks the connection, and every e-mail sent exactly once after it clears.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { appLogFile, type LocalAppsOptions, serviceUrl } from "../../scripts/local-stack/apps";
import { giveToServiceUser, isAlive } from "../../scripts/local-stack/process";
import { type LocalRabbitOptions, rabbitCtl } from "../../scripts/local-stack/rabbitmq";
import { mailDir } from "../../scripts/local-stack/smtp";
import { profile, smtpOptions } from "../../scripts/local-stack/stack";
import { sleep, until } from "../support/databases";
import { type OrderEnvironment, postOrder, startOrderEnvironment } from "../support/order-environment";
import { testPorts } from "../support/ports";

const dir = mkdtempSync(path.join(tmpdir(), "shopfds-alarm-"));
giveToServiceUser(dir);
const P = testPorts("brokerAlarm");
const rabbit: LocalRabbitOptions = { dir: path.join(dir, "rabbitmq"), firstPort: P + 22, name: `shopfds-alarm-${P}` };
const apps: LocalAppsOptions = { dir: path.join(dir, "apps"), outputsFile: path.join(dir, "outputs.json"), servicePort: P, workerMetricsPort: P + 1, targetsFile: path.join(dir, "targets.json") };
const BUYERS = `alarm-${process.pid}-`;
const ALARM_MS = 12_000;
let db: pg.Client;
let userIds: number[] = [];
let pids: number[] = [];
let alarmOn = false;

let env: OrderEnvironment | undefined;

before(async () => {
  env = await startOrderEnvironment({ name: "alarm", dir, rabbit, apps, buyers: BUYERS, sku: "alarm-1" });
  ({ db, userIds, pids } = env);
});

after(async () => {
  if (alarmOn) await Promise.resolve().then(() => rabbitCtl(rabbit, "set_vm_memory_high_watermark", "0.6")).catch(() => undefined);
  await env?.teardown();
});

const mails = (): Map<number, number> => {
  const sink = mailDir(smtpOptions(profile("test")));
  const count = new Map<number, number>();
  if (!existsSync(sink)) return count;
  for (const f of readdirSync(sink)) {
    if (f.startsWith(".")) continue;
    const text = readFileSync(path.join(sink, f), "utf8");
    const id = /order #(\d+) confirmed/.exec(text)?.[1];
    if (id && text.includes(BUYERS)) count.set(Number(id), (count.get(Number(id)) ?? 0) + 1);
  }
  return count;
};

interface Attempt {
  at: number;
  ms: number;
  status: number;
  orderId?: number;
}

describe("a RabbitMQ memory alarm under order load", () => {
  it("every order answered without waiting for the alarm, none lost or doubled, /health warns, every e-mail once after it clears", { timeout: 180_000 }, async () => {
    const attempts: Attempt[] = [];
    const health: { at: number; status: number; rabbit?: string; output?: string }[] = [];
    let running = true;
    const load = (async () => {
      for (let i = 0; running; i++) {
        const at = performance.now();
        const res = await postOrder(serviceUrl(apps), { userIds }, BUYERS, i);
        const body = (await res.json()) as { orderId?: number };
        attempts.push({ at, ms: performance.now() - at, status: res.status, orderId: body.orderId });
        await sleep(Math.max(0, 200 - (performance.now() - at))); // 5 orders a second
      }
    })();
    const probe = (async () => {
      while (running) {
        const res = await fetch(`${serviceUrl(apps)}/health`);
        const body = (await res.json()) as { checks?: Record<string, { status: string; output?: string }[]> };
        const check = body.checks?.["rabbitmq:queue"]?.[0];
        health.push({ at: performance.now(), status: res.status, rabbit: check?.status, output: check?.output });
        await sleep(300);
      }
    })();

    await sleep(2000);
    const alarmAt = performance.now();
    alarmOn = true;
    rabbitCtl(rabbit, "set_vm_memory_high_watermark", "0");
    await sleep(ALARM_MS);
    rabbitCtl(rabbit, "set_vm_memory_high_watermark", "0.6");
    alarmOn = false;
    const clearedAt = performance.now();
    await sleep(3000);
    running = false;
    await Promise.all([load, probe]);

    const during = attempts.filter((a) => a.at >= alarmAt && a.at <= clearedAt);
    const accepted = attempts.filter((a) => a.status === 201);
    const slowest = Math.max(...during.map((a) => a.ms));
    console.log(`    ${attempts.length} orders, ${during.length} during the ${((clearedAt - alarmAt) / 1000).toFixed(1)} s alarm: statuses ${JSON.stringify(Object.fromEntries([...new Set(during.map((a) => a.status))].map((s) => [s, during.filter((a) => a.status === s).length])))}; slowest answer ${slowest.toFixed(0)} ms`);
    assert.ok(during.length > 20, "orders were placed during the alarm");
    assert.deepEqual(attempts.filter((a) => a.status !== 201), [], "every order placed (the broker's alarm does not stop sales)");
    // The behaviour, not a speed target: no answer waited for the alarm to clear (it used to: 20 s).
    assert.ok(slowest < ALARM_MS / 2, `the slowest answer during the alarm took ${slowest.toFixed(0)} ms: it waited for the alarm`);

    const rows = (await db.query("SELECT id FROM orders ORDER BY id")).rows.map((r) => Number(r.id));
    assert.deepEqual(rows, accepted.map((a) => a.orderId).sort((a, b) => a! - b!), "exactly the accepted orders are in the database");
    const warned = health.filter((h) => h.at > alarmAt && h.at < clearedAt && h.rabbit === "warn");
    assert.ok(warned.length > 0, `/health warned during the alarm: ${JSON.stringify(health.filter((h) => h.at > alarmAt && h.at < clearedAt).slice(0, 3))}`);
    assert.match(warned[0]!.output!, /blocked this connection .*publishes wait for the alarm to clear/);
    assert.ok(health.filter((h) => h.at > alarmAt).every((h) => h.status === 200), "the service stays in rotation (its rabbitmq check warns, it does not fail)");
    assert.equal(health.at(-1)!.rabbit, "pass", "the check passes once the alarm clears");

    await until("every accepted order's e-mail", 60_000, async () => {
      const m = mails();
      return accepted.every((a) => (m.get(a.orderId!) ?? 0) >= 1);
    });
    await sleep(1500);
    const m = mails();
    assert.deepEqual(accepted.map((a) => [a.orderId, m.get(a.orderId!)]).filter(([, n]) => n !== 1), [], "one e-mail per order");
    assert.deepEqual(pids.filter((pid) => !isAlive(pid)), [], "no process died");
    const serviceLog = readFileSync(appLogFile(apps, "service"), "utf8");
    assert.match(serviceLog, /the broker blocked this connection: low on memory/, "the service's producer was told");
    assert.match(serviceLog, /the broker unblocked this connection after \d+ ms/);
    const kept = serviceLog.match(/kept for the broker: .*has blocked publishing/g) ?? [];
    assert.ok(kept.length >= during.length - 3, `the e-mails of orders during the alarm were kept for the unblock (${kept.length} of ${during.length})`);
  });
});
