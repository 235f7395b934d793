/**
 * Test support: a database of its own on the test stack's pair, with the schema migrated, so a test
 * file can write freely without touching another file's data (`migrate: false`: an empty one). Dropped by `drop()` (call it in `after`).
 */
import type { PostgresOutputs, StackOutputs } from "../../runtime/outputs";
import { superuserClient } from "../../scripts/local-stack/postgres";
import { postgresOptions, profile } from "../../scripts/local-stack/stack";
import { migrate, targetFromOutputs } from "../../service/bin/migrate";

export async function createMigratedDatabase(outputs: StackOutputs, name: string, options: { migrate?: boolean } = {}): Promise<{ postgres: PostgresOutputs; drop: () => Promise<void> }> {
  const su = await superuserClient(postgresOptions(profile("test")), "primary");
  try {
    await su.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await su.query(`CREATE DATABASE ${name} OWNER ${outputs.postgres.user}`);
  } finally {
    await su.end();
  }
  if (options.migrate !== false) await migrate({ ...targetFromOutputs(outputs), database: name }, { direction: "up" });
  return {
    postgres: { ...outputs.postgres, database: name },
    drop: async () => {
      const c = await superuserClient(postgresOptions(profile("test")), "primary");
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 20 ms until it holds; returns how long that took. */
export async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > timeoutMs) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(20);
  }
  return performance.now() - start;
}
