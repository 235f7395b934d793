#!/usr/bin/env node
/**
 * The runtime's command: applies its own schema (db/migrate.ts) to the database the stack outputs name
 * (SHOPFDS_STACK_OUTPUTS, SHOPFDS_OUTPUTS_FILE or the Pulumi stack, as loadStackOutputs reads them).
 *
 *   npx shopfds-runtime migrate up          apply every pending runtime migration
 *   npx shopfds-runtime migrate down [N]    undo the last N (default 1)
 *   npx shopfds-runtime migrate status      list applied and pending
 */
import { appliedMigrations, migrate, runtimeMigrationNames } from "../db/migrate";
import { loadStackOutputs } from "../outputs";

const USAGE = "usage: shopfds-runtime migrate up | down [N] | status";

async function main(argv: string[]): Promise<void> {
  const [command, action, count, ...rest] = argv;
  if (command !== "migrate" || !["up", "down", "status"].includes(action ?? "") || rest.length > 0) throw new Error(USAGE);
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

main(process.argv.slice(2)).catch((error: Error) => {
  console.error(`shopfds-runtime: ${error.message}`);
  process.exitCode = 1;
});
