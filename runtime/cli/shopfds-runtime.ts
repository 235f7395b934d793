#!/usr/bin/env node
/**
 * The runtime's command, on the stack the outputs name (SHOPFDS_STACK_OUTPUTS, SHOPFDS_OUTPUTS_FILE or
 * the Pulumi stack, as loadStackOutputs reads them):
 *
 *   npx shopfds-runtime migrate up          apply every pending runtime migration (db/migrate.ts)
 *   npx shopfds-runtime migrate down [N]    undo the last N (default 1)
 *   npx shopfds-runtime migrate status      list applied and pending
 *   npx shopfds-runtime dlq list [--task NAME] [--limit N] [--json]
 *                                           the dead letters: task, id, retries, when, why (jobs/dead-letters.ts)
 *   npx shopfds-runtime dlq redrive (--id ID ... | --task NAME | --all) --reason WHY [--limit N]
 *                                           send them back to their queues, retries reset, the reason recorded
 *   npx shopfds-runtime dlq purge [--yes]   empty the queue (asks for the count on a terminal; --yes elsewhere)
 *   npx shopfds-runtime queues migrate      give the task queues this version's arguments (x-max-priority),
 *                                           keeping their messages; workers stopped (jobs/queue-migration.ts)
 */
import { userInfo } from "node:os";
import { createInterface } from "node:readline/promises";
import { parseArgs } from "node:util";
import { appliedMigrations, migrate, runtimeMigrationNames } from "../db/migrate";
import { DeadLetters, type DeadLetter, type RedriveSelection } from "../jobs/dead-letters";
import amqp from "amqplib";
import { migrateTaskQueues } from "../jobs/queue-migration";
import { verifiedTls } from "../tls";
import { loadStackOutputs } from "../outputs";

const USAGE = [
  "usage: shopfds-runtime migrate up | down [N] | status",
  "       shopfds-runtime dlq list [--task NAME] [--limit N] [--json]",
  "       shopfds-runtime dlq redrive (--id ID ... | --task NAME | --all) --reason WHY [--limit N]",
  "       shopfds-runtime dlq purge [--yes]",
  "       shopfds-runtime queues migrate",
].join("\n");

async function queuesCommand(args: string[]): Promise<void> {
  if (args.join(" ") !== "migrate") throw new Error(USAGE);
  const { rabbitmq } = await loadStackOutputs();
  const tls = verifiedTls("rabbitmq.tls", rabbitmq.tls);
  const connection = await amqp.connect(rabbitmq.url, { ...tls, timeout: 5000, clientProperties: { connection_name: "shopfds queue migration" } });
  try {
    await migrateTaskQueues(connection, (l) => console.log(l));
  } finally {
    await connection.close();
  }
}

async function migrateCommand(args: string[]): Promise<void> {
  const [action, count, ...rest] = args;
  if (!["up", "down", "status"].includes(action ?? "") || rest.length > 0) throw new Error(USAGE);
  if (count !== undefined && (action !== "down" || !/^[1-9]\d*$/.test(count))) throw new Error(`${count}: a count is a positive integer, for down only (${USAGE})`);
  const { postgres } = await loadStackOutputs();
  const target = `postgres://${postgres.user}@${postgres.primary.host}:${postgres.primary.port}/${postgres.database}`;
  if (action === "status") {
    const applied = new Set(await appliedMigrations(postgres));
    for (const name of runtimeMigrationNames()) console.log(`  ${applied.has(name) ? "applied" : "pending"}  ${name}`);
    return;
  }
  console.log(`runtime migrations ${action}: ${target}`);
  const ran = await migrate(postgres, { direction: action as "up" | "down", ...(count ? { count: Number(count) } : {}), log: (line) => console.log(`  ${line}`) });
  console.log(ran.length === 0 ? "nothing to do: the runtime's schema is up to date" : `${action === "down" ? "undid" : "applied"} ${ran.length} runtime migration(s)`);
}

const line = (d: DeadLetter) => `  ${d.task}  ${d.id}  retries ${d.retries}${d.redriven ? `, redriven ${d.redriven}×` : ""}  ${d.deadAt ?? "?"}  from ${d.queue}\n    ${d.reason}\n    args ${JSON.stringify(d.args)} kwargs ${JSON.stringify(d.kwargs)}`;

async function dlqCommand(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: { task: { type: "string" }, limit: { type: "string" }, json: { type: "boolean" }, id: { type: "string", multiple: true }, all: { type: "boolean" }, reason: { type: "string" }, yes: { type: "boolean" } },
    strict: true,
  });
  const limit = values.limit === undefined ? undefined : /^\d+$/.test(values.limit) ? Number(values.limit) : NaN;
  if (Number.isNaN(limit)) throw new Error(`--limit: must be a whole number (got ${JSON.stringify(values.limit)})`);
  const { rabbitmq } = await loadStackOutputs();
  const dead = await DeadLetters.connect({ url: rabbitmq.url, ...(rabbitmq.tls ? { tls: rabbitmq.tls } : {}) });
  try {
    if (action === "list") {
      const found = await dead.list({ ...(values.task ? { task: values.task } : {}), ...(limit !== undefined ? { limit } : {}) });
      if (values.json) return console.log(JSON.stringify(found, null, 2));
      console.log(`${await dead.count()} dead letter(s) in ${dead.queue}${found.length ? `; ${found.length} shown, oldest first:` : ""}`);
      for (const d of found) console.log(line(d));
      return;
    }
    if (action === "redrive") {
      const chosen = [values.id?.length ? "--id" : "", values.task ? "--task" : "", values.all ? "--all" : ""].filter(Boolean);
      if (chosen.length !== 1) throw new Error(`redrive: name exactly one of --id, --task or --all (got ${chosen.join(", ") || "none"})`);
      if (!values.reason) throw new Error("redrive: --reason: say why they are sent back (it is recorded with each task)");
      const select: RedriveSelection = values.id?.length ? { ids: values.id } : values.task ? { task: values.task } : { all: true };
      const { redriven } = await dead.redrive(select, { reason: values.reason, actor: `cli:${userInfo().username}`, ...(limit !== undefined ? { limit } : {}) });
      console.log(`redrove ${redriven.length} task(s): ${redriven.map((d) => `${d.task} ${d.id}`).join(", ") || "none matched"}`);
      return;
    }
    if (action === "purge") {
      const count = await dead.count();
      if (!values.yes) {
        if (!process.stdin.isTTY) throw new Error(`purge: ${count} dead letter(s) would go; run on a terminal to confirm, or pass --yes`);
        const rl = createInterface({ input: process.stdin, output: process.stdout });
        const answer = await rl.question(`${count} dead letter(s) in ${dead.queue} will be deleted for good. Type ${count} to confirm: `);
        rl.close();
        if (answer.trim() !== String(count)) return console.log("not purged");
      }
      console.log(`purged ${await dead.purge()} dead letter(s)`);
      return;
    }
    throw new Error(USAGE);
  } finally {
    await dead.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === "migrate") return migrateCommand(rest);
  if (command === "dlq") return dlqCommand(rest);
  if (command === "queues") return queuesCommand(rest);
  throw new Error(USAGE);
}

main(process.argv.slice(2)).catch((error: Error) => {
  console.error(`shopfds-runtime: ${error.message}`);
  process.exitCode = 1;
});
