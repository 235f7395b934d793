/**
 * The ShopFDS scheduler process (one per stack; a second one is harmless): fires the ShopFDS schedule
 * (FDS batch daily at 00:00, log archive Sundays 02:00, stale-task check every 5 minutes) in
 * SHOPFDS_TIMEZONE (default Asia/Seoul), one firing per slot, with its ledger in PostgreSQL.
 *
 *   node --import tsx service/bin/scheduler.ts [--alive-file /tmp/shopfds-worker.alive]
 * Logs: ECS JSON on stdout (each firing, with its task id). Environment: the outputs, SHOPFDS_TIMEZONE,
 * SHOPFDS_ENVIRONMENT, OTEL_EXPORTER_OTLP_ENDPOINT (traces; none: off).
 */
// First: tracing (when the OTEL_* environment names a collector): each firing's send is a trace of its own.
import { tracing } from "@shopfds/runtime/tracing/register";
import { writeFileSync } from "node:fs";
import { hostname } from "node:os";
import pg from "pg";
import { TaskProducer } from "@shopfds/runtime/jobs";
import { Scheduler } from "@shopfds/runtime/jobs";
import { shopSchedule } from "../tasks";
import { pgSsl } from "@shopfds/runtime/db";
import { loadStackOutputs } from "@shopfds/runtime";
import { createLogger } from "@shopfds/runtime/observability";

async function main(): Promise<void> {
  const i = process.argv.indexOf("--alive-file");
  const aliveFile = i >= 0 ? process.argv[i + 1] : undefined;
  const logger = createLogger({ service: "shopfds-scheduler", environment: process.env.SHOPFDS_ENVIRONMENT ?? "dev", ...(process.env.SHOPFDS_RELEASE ? { version: process.env.SHOPFDS_RELEASE } : {}) });
  const log = (line: string) => logger.info(line);
  const outputs = await loadStackOutputs();
  const { primary, database, user, password, tls } = outputs.postgres;
  const ssl = pgSsl(tls);
  const db = new pg.Pool({ host: primary.host, port: primary.port, database, user, password, ...(ssl ? { ssl } : {}), max: 2 });
  db.on("error", () => undefined);
  // Reconnects by itself after a broker loss; a slot that cannot be sent meanwhile is retried next tick.
  const producer = await TaskProducer.connect(outputs.rabbitmq.url, { tls: outputs.rabbitmq.tls, log });
  const timezone = process.env.SHOPFDS_TIMEZONE ?? "Asia/Seoul";
  const scheduler = new Scheduler({
    entries: shopSchedule(timezone),
    sender: producer,
    db,
    hostname: `shopfds-scheduler-${process.pid}@${hostname()}`,
    log,
    onTick: aliveFile ? () => writeFileSync(aliveFile, String(Date.now())) : undefined,
  });
  await scheduler.start();
  log(`scheduler running ${shopSchedule(timezone).map((e) => `${e.name} (${e.cron})`).join(", ")} in ${timezone}`);
  const shutdown = () => void scheduler.stop().then(() => Promise.all([producer.close(), db.end(), tracing?.shutdown()])).then(() => process.exit(0));
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

main().catch((e) => {
  console.error(`scheduler: ${(e as Error).message}`);
  process.exit(1);
});
