/**
 * The ShopFDS worker process (the stacks run it ≥ 2 times; `make worker` runs one locally): two
 * TypeScript Celery-compatible workers with the ShopFDS tasks, on the stack the outputs describe:
 * `shopfds-worker-<pid>` consumes "celery" (reports, the FDS batch, the archive, the stale-task check)
 * and `shopfds-email-<pid>` consumes "shopfds.email" (order e-mails), each with its own slots and
 * broker connections, so a hung SMTP server never holds a report's slot (Celery's practice: slow I/O
 * tasks on their own queue and worker). Both register every task, so a task on the other queue (sent
 * before the routes existed) still runs.
 *
 *   node --import tsx service/bin/worker.ts [--concurrency 4] [--email-concurrency 4] [--alive-file /tmp/shopfds-worker.alive] [--metrics-port 9464] [--task-events]
 * --task-events (Celery's -E): task events from the start; without it, as Celery, they start when a
 * monitor sends enable_events (Flower does).
 * Environment: the outputs (SHOPFDS_OUTPUTS_FILE …), SHOPFDS_PUBLIC_URL (the service, for report links),
 * SHOPFDS_ENVIRONMENT, OTEL_EXPORTER_OTLP_ENDPOINT (traces; none: off).
 * Logs: ECS JSON on stdout, one line per task outcome with its trace id (as the service's lines).
 * SIGTERM/SIGINT: finishes running tasks (up to 30 s), returns the rest to the queue, then exits.
 */
// First: tracing (when the OTEL_* environment names a collector) patches pg and ioredis as they load.
import { tracing } from "@shopfds/runtime/tracing/register";
import { writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { createServer } from "node:http";
import { createLogger, ServiceMetrics } from "@shopfds/runtime/observability";
import { Database } from "@shopfds/runtime/db";
import { EMAIL_QUEUE, PostgresTaskResults, TaskProducer, Worker, type WorkerOptions } from "@shopfds/runtime/jobs";
import { registerShopTasks } from "../tasks";
import { mailTransport } from "../mail";
import { TASK_ROUTES } from "../shop/orders";
import { loadStackOutputs } from "@shopfds/runtime";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

async function main(): Promise<void> {
  const concurrency = Number(option("concurrency", "4"));
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency: must be a positive integer (got ${option("concurrency", "")})`);
  const emailConcurrency = Number(option("email-concurrency", "4"));
  if (!Number.isInteger(emailConcurrency) || emailConcurrency < 1) throw new Error(`--email-concurrency: must be a positive integer (got ${option("email-concurrency", "")})`);
  const aliveFile = option("alive-file", "");
  const metricsPort = Number(option("metrics-port", "9464"));
  const outputs = await loadStackOutputs();
  if (!outputs.smtp) throw new Error("the stack outputs have no smtp settings: the e-mail tasks need an SMTP server");
  const logger = createLogger({ service: "shopfds-worker", environment: process.env.SHOPFDS_ENVIRONMENT ?? "dev", ...(process.env.SHOPFDS_RELEASE ? { version: process.env.SHOPFDS_RELEASE } : {}) });
  const db = await Database.connect(outputs.postgres);
  const log = (line: string) => logger.info(line);
  const producer = await TaskProducer.connect(outputs.rabbitmq.url, { tls: outputs.rabbitmq.tls, routes: TASK_ROUTES, log, writeLocation: () => db.writeLocation() });
  const metrics = new ServiceMetrics({ service: "worker", db });
  const common: Omit<WorkerOptions, "hostname"> = {
    onTaskDone: (task, outcome, seconds) => metrics.observeJob(task, outcome, seconds),
    url: outputs.rabbitmq.url,
    tls: outputs.rabbitmq.tls,
    taskEvents: process.argv.includes("--task-events") || process.argv.includes("-E"),
    // Each task reads after the write location its sender carried (the order's e-mail reads the order).
    readAfter: (after, run) => db.withSession(run, { after }),
    // Chords (sent by Python services or the producer) count their header in Celery's database backend.
    results: new PostgresTaskResults(db),
  };
  let liveAt = { main: 0, email: 0 };
  const heartbeat = (which: "main" | "email") => () => {
    liveAt = { ...liveAt, [which]: Date.now() };
    // Alive while both consume (the probe reads the file's mtime): touched only while both beat.
    const now = Date.now();
    if (aliveFile && now - liveAt.main < 10_000 && now - liveAt.email < 10_000) writeFileSync(aliveFile, String(now));
  };
  const worker = new Worker({ ...common, hostname: `shopfds-worker-${process.pid}@${hostname()}`, concurrency, logger, onHeartbeat: heartbeat("main") });
  const emailWorker = new Worker({ ...common, hostname: `shopfds-email-${process.pid}@${hostname()}`, queue: EMAIL_QUEUE, concurrency: emailConcurrency, logger, onHeartbeat: heartbeat("email") });
  const { smtp } = outputs;
  const mailer = mailTransport(smtp, emailConcurrency);
  for (const w of [worker, emailWorker])
    registerShopTasks(w, {
      db,
      mailer,
      from: smtp.from,
      // Download links point at the service (SHOPFDS_PUBLIC_URL: where clients reach it).
      reportsBaseUrl: `${(process.env.SHOPFDS_PUBLIC_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "")}/reports`,
      sender: producer,
      log,
      onStaleTasks: (n) => metrics.setTasksWaitingOver24h(n),
    });
  metrics.knownTasks([...new Set([...worker.registered(), ...emailWorker.registered()])]);
  // /metrics for Prometheus (job counts, the router's reads, waiting tasks) and a liveness answer.
  const metricsHandler = metrics.handler();
  // Live while it consumes: a worker whose broker connection is down (reconnecting) answers 503.
  const server = createServer((req, res) => {
    if (req.url === "/metrics") return metricsHandler(req, res);
    if (req.url !== "/health/live") return res.writeHead(404).end();
    const live = worker.consuming && emailWorker.consuming;
    res.writeHead(live ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify({ status: live ? "pass" : "fail", ...(live ? {} : { output: `${worker.consuming ? "" : "the task worker is not consuming (reconnecting)"}${!worker.consuming && !emailWorker.consuming ? "; " : ""}${emailWorker.consuming ? "" : "the e-mail worker is not consuming (reconnecting)"}` }) }));
  });
  server.listen(metricsPort, process.env.SHOPFDS_METRICS_HOST ?? "0.0.0.0");
  await worker.start();
  await emailWorker.start();
  const shutdown = () =>
    void Promise.all([worker.stop(), emailWorker.stop()])
      .then(() => Promise.all([producer.close(), db.close(), new Promise((r) => server.close(r)), mailer.close(), tracing?.shutdown()]))
      .then(() => process.exit(0));
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

main().catch((e) => {
  console.error(`worker: ${(e as Error).message}`);
  process.exit(1);
});
