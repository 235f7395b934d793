/**
 * Test support: a scheduler in a process of its own, firing `sched.tick` every second into a test
 * queue, with its ledger in the database named by SCHED_DATABASE_URL. Stops on SIGTERM.
 *
 *   node --import tsx tests/support/scheduler-process.ts <amqp url> <queue> <hostname>
 */
import pg from "pg";
import { TaskProducer } from "../../runtime/jobs/producer";
import { Scheduler } from "../../runtime/jobs/scheduler";

const [url, queue, hostname] = process.argv.slice(2) as [string, string, string];

async function main(): Promise<void> {
  const db = new pg.Pool({ connectionString: process.env.SCHED_DATABASE_URL, max: 2 });
  const producer = await TaskProducer.connect(url);
  const scheduler = new Scheduler({
    entries: [{ name: "every-second", cron: "* * * * * *", task: "sched.tick" }],
    sender: { send: (name, args, kwargs) => producer.send(name, args, kwargs, { queue }) },
    db,
    hostname,
    tickMs: 100,
    catchUpMs: 0,
  });
  await scheduler.start();
  console.log(`ready ${hostname}`);
  process.on("SIGTERM", () => void scheduler.stop().then(() => producer.close()).then(() => db.end()).then(() => process.exit(0)));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
