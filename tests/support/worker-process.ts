/**
 * Test support: a TypeScript worker in a process of its own, so a test can SIGKILL it mid-task.
 * `fault.effect` marks its start in a file, sleeps, then writes its effect idempotently (one row per
 * task id) in the database named by FAULT_DATABASE_URL and counts its attempts there.
 *
 *   node --import tsx tests/support/worker-process.ts <amqp url> <queue> <hostname>
 */
import { appendFileSync } from "node:fs";
import pg from "pg";
import { Worker } from "../../runtime/jobs/worker";

const [url, queue, hostname] = process.argv.slice(2) as [string, string, string];
const pool = new pg.Pool({ connectionString: process.env.FAULT_DATABASE_URL, max: 2 });
const worker = new Worker({ url, queue, hostname, concurrency: 4, heartbeatSeconds: 1 });

worker.register("fault.effect", async (_args, kwargs, ctx) => {
  await pool.query("INSERT INTO fault_attempts (task_id, worker) VALUES ($1, $2)", [ctx.id, hostname]);
  appendFileSync(String(process.env.FAULT_MARKER), `${ctx.id} started on ${hostname}\n`);
  await new Promise((r) => setTimeout(r, Number(kwargs.sleepMs ?? 1500)));
  // The effect is keyed by the task id: a second run of the same task changes nothing.
  await pool.query("INSERT INTO fault_effects (task_id) VALUES ($1) ON CONFLICT DO NOTHING", [ctx.id]);
  return "done";
});

process.on("SIGTERM", () => void worker.stop().then(() => pool.end()).then(() => process.exit(0)));
worker.start().then(
  () => appendFileSync(String(process.env.FAULT_MARKER), `ready ${hostname}\n`),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
