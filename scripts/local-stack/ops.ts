/**
 * Day-to-day views of a running local stack (`make logs`, `make health`):
 * - `followLogs`: every process's log (PostgreSQL members, Redis nodes, RabbitMQ, the SMTP sink, the
 *   monitoring processes, the service, worker and scheduler), its last lines and then what is appended,
 *   each line prefixed with the process it came from; new log files are picked up as they appear.
 * - `healthTable`: each component's health in one table, judged by the runtime's own checks (those the
 *   service's /health runs: PostgreSQL per member with lag, the Redis Cluster's state and memory, the
 *   broker and its queues) and by asking each other process (SMTP's greeting, Prometheus's and
 *   Alertmanager's readiness, the service's /health, the worker's metrics).
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { createConnection } from "node:net";
import path from "node:path";
import { Database } from "../../runtime/db/router";
import { HealthMonitor, type HealthCheck } from "../../runtime/health/health";
import { postgresChecks, rabbitMqCheck, redisClusterCheck, redisMemoryCheck } from "../../runtime/health/checks";
import { TaskProducer } from "../../runtime/jobs/producer";
import { EMAIL_QUEUE, TASK_QUEUE } from "../../runtime/jobs/topology";
import type { StackOutputs } from "../../runtime/outputs";
import { connectRedisCluster } from "../../runtime/redis/client";

/** Directories under a stack that hold data, not logs. */
const NOT_LOGS = new Set(["data", "mail", "mnesia", "appendonlydir", "webhooks", "home", "secrets", "profiles"]);

/** Every log file under `dir` (`*.log`, RabbitMQ's `server.out`), with the name it is shown under. */
export function logFiles(dir: string): { name: string; file: string }[] {
  const found: { name: string; file: string }[] = [];
  const walk = (at: string, depth: number) => {
    if (depth > 4 || !existsSync(at)) return;
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory() && !NOT_LOGS.has(entry.name)) walk(full, depth + 1);
      else if (entry.isFile() && /\.(log|out)$/.test(entry.name) && !entry.name.startsWith(".")) {
        // postgres/primary/server.log → postgres/primary, rabbitmq/log/server.out → rabbitmq, apps/service.log → apps/service
        const parts = path.relative(dir, full).replace(/\.(log|out)$/, "").split(path.sep).filter((s) => s !== "log");
        if (parts.length > 1 && ["server", "redis"].includes(parts[parts.length - 1]!)) parts.pop();
        found.push({ name: parts.join("/"), file: full });
      }
    }
  };
  walk(dir, 0);
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Prints the last `lines` lines of every log under `dir`, then follows them (polling every 250 ms)
 * until `signal` aborts; a line is written whole, after its prefix (`[redis/node-0] …`).
 */
export async function followLogs(dir: string, o: { lines?: number; signal?: AbortSignal; write?: (line: string) => void } = {}): Promise<void> {
  const write = o.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const offsets = new Map<string, { offset: number; partial: string }>();
  /** New lines of `file`; a file seen for the first time starts `from` bytes in, showing its last `lines` lines. */
  const read = (name: string, file: string, width: number, first: boolean) => {
    const size = statSync(file).size;
    const state = offsets.get(file) ?? { offset: first ? Math.max(0, size - 64 * 1024) : 0, partial: "" };
    if (size < state.offset) state.offset = 0; // truncated or rotated
    if (size > state.offset) {
      const fd = openSync(file, "r");
      try {
        const buffer = Buffer.alloc(size - state.offset);
        readSync(fd, buffer, 0, buffer.length, state.offset);
        state.offset = size;
        const text = state.partial + buffer.toString("utf8");
        const parts = text.split("\n");
        state.partial = parts.pop() ?? "";
        const shown = first ? parts.slice(-(o.lines ?? 10)) : parts;
        for (const line of shown) write(`[${name.padEnd(width)}] ${line}`);
      } finally {
        closeSync(fd);
      }
    }
    offsets.set(file, state);
  };
  // One listing per poll; a file that appeared since is shown from its start, one removed meanwhile skipped.
  const poll = (first: boolean) => {
    const files = logFiles(dir);
    const width = Math.max(8, ...files.map((f) => f.name.length));
    for (const { name, file } of files) {
      try {
        read(name, file, width, first);
      } catch {
        offsets.delete(file);
      }
    }
  };
  poll(true);
  while (!o.signal?.aborted) {
    await new Promise((r) => setTimeout(r, 250));
    poll(false);
  }
}

export interface HealthRow {
  readonly component: string;
  readonly status: "pass" | "warn" | "fail";
  readonly detail: string;
}

/** Greets an SMTP server: `220` within `timeoutMs`. */
function smtpGreeting(port: number, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let text = "";
    const done = (e?: Error) => {
      socket.destroy();
      if (e) reject(e);
      else resolve(text.trim());
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`no greeting within ${timeoutMs} ms`)));
    socket.on("error", done);
    socket.on("data", (d) => {
      text += d.toString();
      if (text.includes("\n")) text.startsWith("220") ? done() : done(new Error(`greeting: ${text.trim()}`));
    });
  });
}

async function httpRow(component: string, url: string, judge: (status: number, body: string) => HealthRow["status"], detail: (status: number, body: string) => string): Promise<HealthRow> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    const body = await res.text();
    return { component, status: judge(res.status, body), detail: detail(res.status, body) };
  } catch (e) {
    return { component, status: "fail", detail: `${url}: ${(e as Error).message}` };
  }
}

/** The service's /health: its status and the checks that do not pass. */
function serviceDetail(status: number, body: string): string {
  try {
    const report = JSON.parse(body) as { status: string; checks: Record<string, { status: string; output?: string }[]> };
    const notPassing = Object.entries(report.checks).filter(([, [r]]) => r?.status !== "pass");
    return `HTTP ${status}, ${report.status}${notPassing.length ? `: ${notPassing.map(([k, [r]]) => `${k} ${r!.status}${r!.output ? ` (${r!.output})` : ""}`).join("; ")}` : `, ${Object.keys(report.checks).length} checks pass`}`;
  } catch {
    return `HTTP ${status}, not a health report`;
  }
}

/**
 * Each component of the stack whose outputs are `outputs`, with the local processes' ports: the data
 * services judged by the runtime's checks, the others asked directly. Never throws: a component that
 * cannot be reached is a `fail` row saying why.
 */
export async function healthTable(outputs: StackOutputs, ports: { prometheus: number; alertmanager: number; service?: number; workerMetrics?: number }): Promise<HealthRow[]> {
  const rows: HealthRow[] = [];
  const closers: (() => unknown)[] = [];
  try {
    const checks: HealthCheck[] = [];
    const db = await Database.connect(outputs.postgres).catch((e: Error) => (rows.push({ component: "postgres", status: "fail", detail: e.message }), undefined));
    if (db) closers.push(() => db.close()), checks.push(...postgresChecks(db));
    const redis = connectRedisCluster(outputs.redis);
    closers.push(() => redis.disconnect());
    checks.push(redisClusterCheck(redis), redisMemoryCheck(redis));
    const producer = await TaskProducer.connect(outputs.rabbitmq.url, { tls: outputs.rabbitmq.tls }).catch((e: Error) => (rows.push({ component: "rabbitmq", status: "fail", detail: e.message }), undefined));
    if (producer) closers.push(() => producer.close()), checks.push(rabbitMqCheck(producer, TASK_QUEUE, `rabbitmq:${TASK_QUEUE}`), rabbitMqCheck(producer, EMAIL_QUEUE, `rabbitmq:${EMAIL_QUEUE}`));
    const monitor = new HealthMonitor(checks, { timeoutMs: 3000 });
    await monitor.refresh();
    for (const [name, [r]] of Object.entries(monitor.report().checks)) {
      rows.push({ component: name, status: r!.status, detail: [r!.observedValue !== undefined ? `${r!.observedValue}${r!.observedUnit ? ` ${r!.observedUnit}` : ""}` : "", r!.output ?? ""].filter(Boolean).join(", ") || "ok" });
    }
  } finally {
    for (const close of closers) await Promise.resolve(close()).catch(() => undefined);
  }
  if (outputs.smtp) {
    rows.push(await smtpGreeting(outputs.smtp.port).then((g) => ({ component: "smtp", status: "pass" as const, detail: g }), (e: Error) => ({ component: "smtp", status: "fail" as const, detail: e.message })));
  }
  const ready = (s: number) => (s === 200 ? "pass" : "fail");
  rows.push(await httpRow("prometheus", `http://127.0.0.1:${ports.prometheus}/-/ready`, ready, (s, b) => `HTTP ${s}: ${b.trim()}`));
  rows.push(await httpRow("alertmanager", `http://127.0.0.1:${ports.alertmanager}/-/ready`, ready, (s, b) => `HTTP ${s}: ${b.trim() || "ready"}`));
  if (ports.service) rows.push(await httpRow("service", `http://127.0.0.1:${ports.service}/health`, (s, b) => (s !== 200 ? "fail" : /"status":"warn"/.test(b) ? "warn" : "pass"), serviceDetail));
  if (ports.workerMetrics) rows.push(await httpRow("worker", `http://127.0.0.1:${ports.workerMetrics}/metrics`, ready, (s, b) => `HTTP ${s}, ${b.split("\n").filter((l) => l && !l.startsWith("#")).length} samples`));
  return rows;
}

/** The rows as an aligned table. */
export function formatHealth(rows: readonly HealthRow[]): string {
  const w = Math.max(9, ...rows.map((r) => r.component.length));
  return [`${"COMPONENT".padEnd(w)}  STATUS  DETAIL`, ...rows.map((r) => `${r.component.padEnd(w)}  ${r.status.padEnd(6)}  ${r.detail}`)].join("\n");
}
