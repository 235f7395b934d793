/**
 * The runtime's own schema: the tables its modules read and write, shipped with the package as
 * node-pg-migrate migrations (runtime/migrations/) and recorded in their own table, so a service's own
 * migrations (and their table) never collide with them.
 *
 *   blacklist_entries, type blacklist_type   fds/blacklist.ts: the blacklist's durable copy and fallback
 *   scheduler_runs                           jobs/scheduler.ts: the ledger that fires each slot once
 *
 * A service applies them with one call before its own migrations (`await migrate(outputs.postgres)`),
 * or with the package's command (`npx shopfds-runtime migrate up`). Every migration is idempotent (a
 * database that already holds these objects keeps them) and has a `down`.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import type { PostgresOutputs } from "../outputs";
import { pgSsl } from "./tls";

/** The compiled package's migrations sit in dist/migrations; in the repository, runtime/migrations. */
export const RUNTIME_MIGRATIONS_DIR = path.resolve(__dirname, "..", "migrations");
/** Where node-pg-migrate records which of the runtime's migrations ran (beside the service's own table). */
export const RUNTIME_MIGRATIONS_TABLE = "shopfds_runtime_migrations";
/** The tables (and types) the runtime creates and owns. */
export const RUNTIME_TABLES = ["blacklist_entries", "scheduler_runs", "blacklist_history", "celery_taskmeta", "celery_tasksetmeta"] as const;
/** Migration sources only: not the compiled package's declarations and source maps. */
const MIGRATION_FILE = /^\d{4}_[a-z0-9_-]+\.(ts|js)$/;

/** Where to migrate: the contract's postgres outputs (their primary), or a connected client. */
export type MigrationDatabase = Pick<PostgresOutputs, "primary" | "database" | "user" | "password" | "tls"> | { readonly client: pg.ClientBase };

export interface RuntimeMigrateOptions {
  /** @default "up" */
  readonly direction?: "up" | "down";
  /** How many to run. @default every pending one for up, 1 for down */
  readonly count?: number;
  /** One line per migration that runs. @default no output */
  readonly log?: (line: string) => void;
}

/** The runtime's migrations in the order they run (names as node-pg-migrate records them). */
export function runtimeMigrationNames(): string[] {
  return readdirSync(RUNTIME_MIGRATIONS_DIR)
    .filter((f) => MIGRATION_FILE.test(f))
    .sort()
    .map((f) => f.replace(/\.(ts|js)$/, ""));
}

async function withClient<T>(database: MigrationDatabase, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  if ("client" in database) return fn(database.client);
  const ssl = pgSsl(database.tls);
  const client = new pg.Client({
    host: database.primary.host,
    port: database.primary.port,
    database: database.database,
    user: database.user,
    password: database.password,
    application_name: "shopfds-runtime-migrate",
    connectionTimeoutMillis: 10_000,
    ...(ssl ? { ssl } : {}),
  });
  client.on("error", () => undefined); // an idle-connection error surfaces on the next query instead
  await client.connect();
  try {
    const { rows } = await client.query<{ recovery: boolean }>("SELECT pg_is_in_recovery() AS recovery");
    if (rows[0]?.recovery) throw new Error(`migrate: ${database.primary.host}:${database.primary.port} is a replica (in recovery), not the primary`);
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Applies (or undoes) the runtime's migrations; returns the names of those that ran, in order. */
export async function migrate(database: MigrationDatabase, options: RuntimeMigrateOptions = {}): Promise<string[]> {
  const { runner } = await import("node-pg-migrate");
  const direction = options.direction ?? "up";
  const log = options.log ?? (() => undefined);
  return withClient(database, async (client) => {
    const ran = await runner({
      dbClient: client as pg.Client,
      dir: RUNTIME_MIGRATIONS_DIR,
      // Only NNNN_name.ts/.js: the package also ships declarations and source maps in that folder.
      ignorePattern: "(\\..*|.*\\.map|.*\\.d\\.ts)",
      migrationsTable: RUNTIME_MIGRATIONS_TABLE,
      direction,
      count: options.count ?? (direction === "up" ? Infinity : 1),
      checkOrder: true,
      singleTransaction: true,
      logger: { debug: () => undefined, info: (m: string) => void (m.startsWith("### MIGRATION") && log(m.replace(/#/g, "").trim())), warn: (m: string) => log(`warning: ${m}`), error: (m: string) => log(`error: ${m}`) },
    });
    return ran.map((m) => m.name);
  });
}

/** The runtime's migrations applied on the database, in order (empty when none ever ran). */
export async function appliedMigrations(database: MigrationDatabase): Promise<string[]> {
  return withClient(database, async (client) => {
    const exists = await client.query<{ present: boolean }>("SELECT to_regclass($1) IS NOT NULL AS present", [RUNTIME_MIGRATIONS_TABLE]);
    if (!exists.rows[0]?.present) return [];
    const { rows } = await client.query<{ name: string }>(`SELECT name FROM ${RUNTIME_MIGRATIONS_TABLE} ORDER BY run_on, id`);
    return rows.map((r) => r.name);
  });
}
