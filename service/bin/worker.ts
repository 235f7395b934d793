/**
 * The ShopFDS worker process (the stacks run it ≥ 2 times; `make worker` runs one locally): the
 * TypeScript Celery-compatible worker with the ShopFDS tasks, on the stack the outputs describe.
 *
 *   node --import tsx service/bin/worker.ts [--concurrency 4] [--alive-file /tmp/shopfds-worker.alive] [--metrics-port 9464] [--task-events]
 * --task-events (Celery's -E): task events from the start; without it, as Celery, they start when a
 * monitor sends enable_events (Flower does).
 * Environment: the outputs (SHOPFDS_OUTPUTS_FILE …), SHOPFDS_PUBLIC_URL (the service, for report links).
 * SIGTERM/SIGINT: finishes running tasks (up to 30 s), returns the rest to the queue, then exits.
 */
import { writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { createServer } from "node:http";
import nodemailer from "nodemailer";
import { ServiceMetrics } from "@shopfds/runtime/observability";
import { Database } from "@shopfds/runtime/db";
import { TaskProducer } from "@shopfds/runtime/jobs";
import { registerShopTasks } from "../tasks";
import { Worker } from "@shopfds/runtime/jobs";
import { loadStackOutputs } from "@shopfds/runtime";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

async function main(): Promise<void> {
  const concurrency = Number(option("concurrency", "4"));
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency: must be a positive integer (got ${option("concurrency", "")})`);
  const aliveFile = option("alive-file", "");
  const metricsPort = Number(option("metrics-port", "9464"));
  const outputs = await loadStackOutputs();
  if (!outputs.smtp) throw new Error("the stack outputs have no smtp settings: the e-mail tasks need an SMTP server");
  const db = await Database.connect(outputs.postgres);
  const log = (line: string) => console.log(`[worker] ${line}`);
  const producer = await TaskProducer.connect(outputs.rabbitmq.url, { log });
  const metrics = new ServiceMetrics({ service: "worker", db });
  const worker = new Worker({
    onTaskDone: (task, outcome, seconds) => metrics.observeJob(task, outcome, seconds),
    url: outputs.rabbitmq.url,
    hostname: `shopfds-worker-${process.pid}@${hostname()}`,
    concurrency,
    taskEvents: process.argv.includes("--task-events") || process.argv.includes("-E"),
    log,
    onHeartbeat: aliveFile ? () => writeFileSync(aliveFile, String(Date.now())) : undefined,
  });
  const { smtp } = outputs;
  // Pooled: up to one SMTP connection per concurrent task, each kept for up to 100 messages, instead of
  // a connection (TCP, greeting, EHLO, TLS, AUTH, QUIT) per e-mail; nodemailer reconnects when the relay
  // closes an idle one.
  const mailer = nodemailer.createTransport({ pool: true, maxConnections: concurrency, maxMessages: 100, host: smtp.host, port: smtp.port, secure: smtp.secure, ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password } } : {}) });
  registerShopTasks(worker, {
    db,
    mailer,
    from: smtp.from,
    // Download links point at the service (SHOPFDS_PUBLIC_URL: where clients reach it).
    reportsBaseUrl: `${(process.env.SHOPFDS_PUBLIC_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "")}/reports`,
    sender: producer,
    log,
    onStaleTasks: (n) => metrics.setTasksWaitingOver24h(n),
  });
  // /metrics for Prometheus (job counts, the router's reads, waiting tasks) and a liveness answer.
  const metricsHandler = metrics.handler();
  // Live while it consumes: a worker whose broker connection is down (reconnecting) answers 503.
  const server = createServer((req, res) => {
    if (req.url === "/metrics") return metricsHandler(req, res);
    if (req.url !== "/health/live") return res.writeHead(404).end();
    res.writeHead(worker.consuming ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify({ status: worker.consuming ? "pass" : "fail" }));
  });
  server.listen(metricsPort, process.env.SHOPFDS_METRICS_HOST ?? "0.0.0.0");
  await worker.start();
  const shutdown = () =>
    void worker
      .stop()
      .then(() => Promise.all([producer.close(), db.close(), new Promise((r) => server.close(r)), mailer.close()]))
      .then(() => process.exit(0));
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

main().catch((e) => {
  console.error(`worker: ${(e as Error).message}`);
  process.exit(1);
});
