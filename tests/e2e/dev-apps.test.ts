/**
 * End to end: what `make dev` starts after the servers (scripts/local-stack/apps.ts) — the service, a
 * worker and the scheduler as their own processes — on the test stack, with a database, directory and
 * ports of their own. They answer, work together (an order's e-mail is sent by the worker process),
 * are registered with Prometheus, and are stopped by PID, leaving nothing behind, pass or fail.
 * Their traces go over OTLP/HTTP to a sink (the local stack's trace sink): one order is followed from
 * the HTTP request through PostgreSQL and the publish to the e-mail task's span in the worker process,
 * under one trace id that the service's access line and the worker's outcome line carry too.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { adminPasswordFile, appsStatus, DEV_ADMIN_EMAIL, type LocalAppsOptions, serviceUrl, startApps, stopApps } from "../../scripts/local-stack/apps";
import { isAlive, spawnDetached, stopPid } from "../../scripts/local-stack/process";
import { receivedSpans } from "../support/otlp";
import { ORDER_EMAIL_TASK } from "../../service/shop/orders";
import { mailDir } from "../../scripts/local-stack/smtp";
import { profile, smtpOptions } from "../../scripts/local-stack/stack";
import { createMigratedDatabase, until } from "../support/databases";
import { testPorts } from "../support/ports";

const dir = mkdtempSync(path.join(tmpdir(), "shopfds-apps-"));
const traces = path.join(dir, "traces");
const options: LocalAppsOptions = { dir, outputsFile: path.join(dir, "outputs.json"), servicePort: testPorts("apps"), workerMetricsPort: testPorts("apps") + 1, targetsFile: path.join(dir, "targets", "services.json"), otlpEndpoint: `http://127.0.0.1:${testPorts("apps") + 2}` };
let sinkPid: number | undefined;
let outputs: StackOutputs;
let drop: () => Promise<void> = async () => undefined;
let pids: number[] = [];

before(async () => {
  const base = await loadStackOutputs();
  const created = await createMigratedDatabase(base, `shopfds_apps_${process.pid}`);
  drop = created.drop;
  outputs = { ...base, postgres: created.postgres };
  writeFileSync(options.outputsFile, JSON.stringify(outputs), { mode: 0o600 });
  const c = new pg.Client({ ...outputs.postgres.primary, database: outputs.postgres.database, user: outputs.postgres.user, password: outputs.postgres.password });
  await c.connect();
  await c.query("INSERT INTO users (email, password_hash, name) VALUES ('apps-buyer@test.com', 'x', 'Buyer'); INSERT INTO products (sku, name, category, price, stock) VALUES ('apps-1', 'Lamp', 'home', 30000, 10)");
  await c.end();
  // The collector: the local stack's trace sink (the webhook sink on a port of its own).
  sinkPid = spawnDetached(process.execPath, ["--import", "tsx", "service/bin/webhook-sink.ts", String(testPorts("apps") + 2), traces], { logFile: path.join(dir, "trace-sink.log"), pidFile: path.join(dir, "trace-sink.pid"), cwd: path.resolve(__dirname, "../..") });
  await until("the trace sink", 15_000, async () => (await fetch(`http://127.0.0.1:${testPorts("apps") + 2}/-/ready`).catch(() => undefined))?.ok === true);
});

after(async () => {
  await stopApps(options);
  if (sinkPid) await stopPid(sinkPid, "SIGTERM");
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
  await drop();
  rmSync(dir, { recursive: true, force: true });
});

describe("make dev's processes (local-stack apps)", () => {
  it("start, answer, work together, register with Prometheus, and stop by PID", async () => {
    await startApps(options, outputs);
    const status = appsStatus(options);
    pids = status.map((s) => s.pid!).filter(Boolean);
    assert.deepEqual(status.map((s) => [s.name, typeof s.pid]), [["service", "number"], ["worker", "number"], ["scheduler", "number"]]);
    assert.equal((await fetch(`${serviceUrl(options)}/health/ready`)).status, 200);
    assert.deepEqual(JSON.parse(readFileSync(options.targetsFile, "utf8"))[0].targets, [`127.0.0.1:${options.servicePort}`, `127.0.0.1:${options.workerMetricsPort}`], "Prometheus scrapes the service and the worker");
    assert.match(await (await fetch(`http://127.0.0.1:${options.workerMetricsPort}/metrics`)).text(), /shopfds_/);

    // The dev admin logs in with the password kept in its 0600 file.
    assert.equal(readFileSync(adminPasswordFile(options)).length >= 20, true);
    assert.equal(statSync(adminPasswordFile(options)).mode & 0o777, 0o600);
    const login = await fetch(`${serviceUrl(options)}/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: DEV_ADMIN_EMAIL, password: readFileSync(adminPasswordFile(options), "utf8").trim() }) });
    assert.equal(login.status, 200);

    // An order through the service process; its e-mail sent by the worker process.
    const placed = await fetch(`${serviceUrl(options)}/orders`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ userId: 1, items: [{ productId: 1, quantity: 1 }], ip: "192.0.2.44", email: "apps-buyer@test.com" }) });
    const order = (await placed.json()) as { orderId: number };
    assert.equal(placed.status, 201, JSON.stringify(order));
    const sink = mailDir(smtpOptions(profile("test")));
    await until("the worker process sent the e-mail", 10_000, async () => existsSync(sink) && readdirSync(sink).some((f) => !f.startsWith(".") && readFileSync(path.join(sink, f), "utf8").includes(`order #${order.orderId} confirmed`) && readFileSync(path.join(sink, f), "utf8").includes("apps-buyer@test.com")));
    // The scheduler's lines are ECS JSON as the service's.
    const schedulerLines = readFileSync(path.join(dir, "scheduler.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { message: string; "service.name": string });
    assert.ok(schedulerLines.some((l) => /^scheduler running fds-batch-daily \(0 0 \* \* \*\)/.test(l.message) && l["service.name"] === "shopfds-scheduler"), JSON.stringify(schedulerLines));

    // One trace from the request to the e-mail task's run in the worker process.
    const EMAIL = ORDER_EMAIL_TASK;
    let spans = receivedSpans(traces);
    // Each process exports every second (OTEL_BSP_SCHEDULE_DELAY): wait for both ends.
    await until("the request's and the e-mail task's spans at the trace sink", 15_000, async () => (spans = receivedSpans(traces)).some((s) => s.name === `run/${EMAIL}` && s.service === "shopfds-worker") && spans.some((s) => s.name === "POST /orders"));
    const request = spans.find((s) => s.name === "POST /orders" && s.kind === 2 && s.service === "shopfds-service");
    assert.ok(request, `the service's server span, among ${spans.map((s) => `${s.service}:${s.name}`).join(", ")}`);
    const inTrace = spans.filter((s) => s.traceId === request.traceId);
    const publish = inTrace.find((s) => s.name === `apply_async/${EMAIL}` && s.kind === 4 && s.service === "shopfds-service");
    assert.ok(publish, "the publish is in the request's trace");
    const run = inTrace.find((s) => s.name === `run/${EMAIL}` && s.kind === 5 && s.service === "shopfds-worker");
    assert.ok(run, "the e-mail task's run is in the request's trace");
    assert.equal(run.parentSpanId, publish.spanId, "the run is the publish's child (the context travelled in the task headers)");
    assert.ok(inTrace.some((s) => s.service === "shopfds-service" && s.attributes["db.system.name"] === "postgresql" && s.attributes["shopfds.db.role"] === "primary"), "the order's statements on the primary, named so");
    assert.ok(inTrace.some((s) => s.service === "shopfds-worker" && s.attributes["db.system.name"] === "postgresql" && s.parentSpanId === run.spanId), "the task's queries are the run's children");
    assert.ok(!inTrace.some((s) => s.name === "pg-pool.connect"), "no span per pool checkout");
    assert.ok(inTrace.some((s) => s.service === "shopfds-service" && s.attributes["db.system.name"] === "redis"), "the FDS checks on Redis in the same trace");
    // The lines name the same trace: the service's access line and the worker's outcome line.
    const lines = (app: string) => readFileSync(path.join(dir, `${app}.log`), "utf8").trim().split("\n").flatMap((l) => (l.startsWith("{") ? [JSON.parse(l) as { message: string; trace?: { id: string }; event?: { action?: string }; labels?: Record<string, string> }] : []));
    assert.ok(lines("service").some((l) => l.message === "POST /orders 201" && l.trace?.id === request.traceId), "the access line carries the span's trace id");
    assert.ok(lines("worker").some((l) => l.event?.action === "task-succeeded" && l.labels?.task === EMAIL && l.trace?.id === request.traceId), "the worker's outcome line carries it too");

    const stopped = await stopApps(options);
    assert.deepEqual(stopped.sort(), ["scheduler", "service", "worker"]);
    assert.deepEqual(pids.filter(isAlive), [], "every process is gone");
    assert.equal(readFileSync(options.targetsFile, "utf8").trim(), "[]", "Prometheus is told they are gone");
  });
});
