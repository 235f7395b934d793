/**
 * Schema migrations: `make migrate`, `make reset-db` (scripts/reset-db.sh) and the migration job.
 *
 * The migrations live in `migrations/` and run with node-pg-migrate, after the runtime's own (the tables
 * @shopfds/runtime owns: its `migrate`, recorded in its own table); their names are listed here as
 * `@shopfds/runtime/NNNN_name`. `down N` undoes the service's; `down --all` the service's, then the
 * runtime's. The database is always the one
 * the stack outputs name (its primary). A connection URL given on the command line or in DATABASE_URL
 * is only accepted when it names that same server and database, and after connecting the script checks
 * again that it talks to a primary holding the configured database, so a stray URL can never migrate
 * or wipe another database.
 *
 *   node --import tsx service/bin/migrate.ts up                 apply every pending migration
 *   node --import tsx service/bin/migrate.ts down [N | --all]   undo the last N (default 1) or all migrations
 *   node --import tsx service/bin/migrate.ts status             list applied and pending migrations
 *   node --import tsx service/bin/migrate.ts reset              drop everything, then apply every migration
 *   options: --url postgres://…  (or DATABASE_URL) to name the target explicitly
 *            --yes  reset without asking (it asks only on a terminal)
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline/promises";
import pg from "pg";
import { pgSsl } from "@shopfds/runtime/db";
import * as runtimeSchema from "@shopfds/runtime/db";
import { loadStackOutputs, type StackOutputs } from "@shopfds/runtime";

export const MIGRATIONS_DIR = path.resolve(__dirname, "..", "migrations");
export const MIGRATIONS_TABLE = "schema_migrations";
/** TypeScript in the repository (tsx), JavaScript in the image (compiled). */
const MIGRATION_FILE = /^\d{4}_[a-z0-9-_]+\.(ts|js)$/;

export interface MigrationTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  /** Verified TLS (from the contract's postgres.tls). */
  readonly ssl?: import("node:tls").ConnectionOptions;
}

/** Raised when the requested database is not the configured one, or the server is not what it should be. */
export class MigrationTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MigrationTargetError";
  }
}

export function targetFromOutputs(outputs: StackOutputs): MigrationTarget {
  const { primary, database, user, password, tls } = outputs.postgres;
  const ssl = pgSsl(tls);
  return { host: primary.host, port: primary.port, database, user, password, ...(ssl ? { ssl } : {}) };
}

/** `postgres://user@host:port/db`, never with the password. */
export function describeTarget(t: Pick<MigrationTarget, "host" | "port" | "database" | "user">): string {
  const host = t.host.includes(":") ? `[${t.host}]` : t.host;
  return `postgres://${t.user}@${host}:${t.port}/${t.database}`;
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);
const sameHost = (a: string, b: string) => a.toLowerCase() === b.toLowerCase() || (LOOPBACK.has(a.toLowerCase()) && LOOPBACK.has(b.toLowerCase()));

/**
 * Returns the configured target, after checking that an explicitly requested URL names the same server
 * and database. The URL's credentials, if any, are ignored: the stack's own are used.
 */
export function resolveTarget(configured: MigrationTarget, requestedUrl?: string): MigrationTarget {
  if (!requestedUrl) return configured;
  let url: URL;
  try {
    url = new URL(requestedUrl);
  } catch {
    throw new MigrationTargetError(`--url: not a valid connection URL (expected postgres://host:port/database)`);
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new MigrationTargetError(`--url: protocol must be postgres: or postgresql: (got ${url.protocol})`);
  }
  const requested = {
    host: decodeURIComponent(url.hostname.replace(/^\[|\]$/g, "")),
    port: url.port ? Number(url.port) : 5432,
    database: decodeURIComponent(url.pathname.replace(/^\//, "")),
  };
  const mismatches: string[] = [];
  if (!sameHost(requested.host, configured.host)) mismatches.push(`host ${requested.host} is not ${configured.host}`);
  if (requested.port !== configured.port) mismatches.push(`port ${requested.port} is not ${configured.port}`);
  if (requested.database !== configured.database) mismatches.push(`database "${requested.database}" is not "${configured.database}"`);
  if (mismatches.length > 0) {
    throw new MigrationTargetError(
      `refusing to touch ${requested.host}:${requested.port}/${requested.database}: it is not the configured database ` +
        `(${describeTarget(configured)}): ${mismatches.join("; ")}`,
    );
  }
  return configured;
}

/** Confirms, on a connected client, that the server is a primary and holds the configured database. */
export async function verifyServer(client: pg.ClientBase, target: MigrationTarget): Promise<void> {
  const { rows } = await client.query<{ db: string; recovery: boolean }>("SELECT current_database() AS db, pg_is_in_recovery() AS recovery");
  const [row] = rows;
  if (!row || row.db !== target.database) {
    throw new MigrationTargetError(`refusing to touch ${describeTarget(target)}: the server says its database is "${row?.db}"`);
  }
  if (row.recovery) {
    throw new MigrationTargetError(`refusing to touch ${describeTarget(target)}: that server is a replica (in recovery), not the primary`);
  }
}

async function connect(target: MigrationTarget): Promise<pg.Client> {
  const client = new pg.Client({ ...target, application_name: "shopfds-migrate", connectionTimeoutMillis: 10_000 });
  client.on("error", () => undefined); // an idle-connection error surfaces on the next query instead
  await client.connect();
  try {
    await verifyServer(client, target);
  } catch (error) {
    await client.end();
    throw error;
  }
  return client;
}

export interface MigrateOptions {
  /** `up` applies pending migrations, `down` undoes applied ones. */
  readonly direction: "up" | "down";
  /** How many to run; `Infinity` for all. @default Infinity for up, 1 for down */
  readonly count?: number;
  /** Progress lines (one per migration). @default no output */
  readonly log?: (line: string) => void;
  /** @default MIGRATIONS_DIR */
  readonly dir?: string;
}

/** How the runtime's migrations are named among the service's. */
export const RUNTIME_PREFIX = "@shopfds/runtime/";

/**
 * Runs migrations on the target and returns the names of those that ran, in order: up, the runtime's
 * then the service's; down, the service's (with `count: Infinity`, then the runtime's too).
 */
export async function migrate(target: MigrationTarget, options: MigrateOptions): Promise<string[]> {
  const { runner } = await import("node-pg-migrate");
  const log = options.log ?? (() => undefined);
  const client = await connect(target);
  const runtime = (direction: "up" | "down") => runtimeSchema.migrate({ client }, { direction, count: Infinity, log: (l) => log(l.replace(/^MIGRATION /, `MIGRATION ${RUNTIME_PREFIX}`)) }).then((names) => names.map((n) => RUNTIME_PREFIX + n));
  try {
    const before = options.direction === "up" && !options.dir ? await runtime("up") : [];
    const ran = await runner({
      dbClient: client,
      dir: options.dir ?? MIGRATIONS_DIR,
      migrationsTable: MIGRATIONS_TABLE,
      direction: options.direction,
      count: options.count ?? (options.direction === "up" ? Infinity : 1),
      checkOrder: true,
      singleTransaction: true,
      // node-pg-migrate prints each statement; only its per-migration headers are progress worth showing.
      logger: { debug: () => undefined, info: (m: string) => void (m.startsWith("### MIGRATION") && log(m.replace(/#/g, "").trim())), warn: (m: string) => log(`warning: ${m}`), error: (m: string) => log(`error: ${m}`) },
    });
    const after = options.direction === "down" && options.count === Infinity && !options.dir ? await runtime("down") : [];
    return [...before, ...ran.map((m) => m.name), ...after];
  } finally {
    await client.end();
  }
}

/** Names of the migrations applied on the target, in order, the runtime's first (empty when none ever ran). */
export async function appliedMigrations(target: MigrationTarget): Promise<string[]> {
  const client = await connect(target);
  try {
    const runtime = (await runtimeSchema.appliedMigrations({ client })).map((n) => RUNTIME_PREFIX + n);
    const exists = await client.query("SELECT to_regclass($1) IS NOT NULL AS present", [MIGRATIONS_TABLE]);
    if (!exists.rows[0].present) return runtime;
    const { rows } = await client.query<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY run_on, id`);
    return [...runtime, ...rows.map((r) => r.name)];
  } finally {
    await client.end();
  }
}

/** Every migration `up` runs, in order: the runtime's (prefixed), then the service's. */
export async function migrationNames(): Promise<string[]> {
  return [...runtimeSchema.runtimeMigrationNames().map((n) => RUNTIME_PREFIX + n), ...(await serviceMigrationNames())];
}

/** The service's migration files, in the order they run (names without extension, as node-pg-migrate records them). */
export async function serviceMigrationNames(dir = MIGRATIONS_DIR): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => !f.startsWith(".")).sort();
  const bad = files.filter((f) => !MIGRATION_FILE.test(f));
  if (bad.length > 0) throw new Error(`${dir}: not named NNNN_name.ts (or .js, compiled): ${bad.join(", ")}`);
  return files.map((f) => f.replace(/\.(ts|js)$/, ""));
}

/** Migration files that do not export a `down` function (node-pg-migrate would guess or refuse one). */
export async function migrationsWithoutDown(dir = MIGRATIONS_DIR): Promise<string[]> {
  const missing: string[] = [];
  for (const name of await serviceMigrationNames(dir)) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(path.join(dir, name)) as { up?: unknown; down?: unknown };
    if (typeof mod.up !== "function") throw new Error(`${name}: exports no up function`);
    if (typeof mod.down !== "function") missing.push(name);
  }
  return missing;
}

/**
 * Drops every object the application role owns in the configured database (tables, types, functions,
 * the migrations table) and applies every migration again.
 */
export async function resetDatabase(target: MigrationTarget, log: (line: string) => void = () => undefined): Promise<string[]> {
  const client = await connect(target);
  try {
    log(`dropping everything ${target.user} owns in ${describeTarget(target)}`);
    await client.query("DROP OWNED BY CURRENT_USER CASCADE");
  } finally {
    await client.end();
  }
  return migrate(target, { direction: "up", log });
}

function parseArgs(argv: string[]): { command: string; count?: number; url?: string; yes: boolean } {
  const [command = "", ...rest] = argv;
  let count: number | undefined;
  let yes = false;
  let url = process.env.DATABASE_URL || undefined;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (arg === "--all") count = Infinity;
    else if (arg === "--yes" || arg === "-y") yes = true;
    else if (arg === "--url") url = rest[++i];
    else if (arg.startsWith("--url=")) url = arg.slice("--url=".length);
    else if (/^\d+$/.test(arg) && Number(arg) > 0) count = Number(arg);
    else throw new Error(`unknown argument "${arg}" (expected a positive count, --all, --yes or --url URL)`);
  }
  return { command, count, url, yes };
}

async function main(): Promise<void> {
  const { command, count, url, yes } = parseArgs(process.argv.slice(2));
  if (!["up", "down", "status", "reset"].includes(command)) {
    throw new Error(`unknown command "${command}": expected up, down [N|--all], status or reset`);
  }
  if (command === "reset" && /^prod/i.test(process.env.SHOPFDS_PULUMI_STACK ?? "")) {
    throw new MigrationTargetError(`refusing to reset the database of Pulumi stack ${process.env.SHOPFDS_PULUMI_STACK}: reset is for development stacks`);
  }
  const target = resolveTarget(targetFromOutputs(await loadStackOutputs()), url);
  const log = (line: string) => console.log(`  ${line}`);
  console.log(`${command}: ${describeTarget(target)}`);
  if (command === "status") {
    const applied = new Set(await appliedMigrations(target));
    for (const name of await migrationNames()) console.log(`  ${applied.has(name) ? "applied" : "pending"}  ${name}`);
    return;
  }
  if (command === "reset" && !yes && process.stdin.isTTY) {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question(`This drops every table and all data in ${describeTarget(target)}. Type the database name to go on: `);
    rl.close();
    if (answer.trim() !== target.database) throw new Error("not confirmed; nothing was changed");
  }
  const ran = command === "reset" ? await resetDatabase(target, log) : await migrate(target, { direction: command as "up" | "down", count, log });
  console.log(ran.length === 0 ? "nothing to do: the schema is up to date" : `${command === "down" ? "undid" : "applied"} ${ran.length} migration(s)`);
}

if (require.main === module) {
  main().catch((error: Error) => {
    console.error(`migrate: ${error.message}`);
    process.exitCode = 1;
  });
}
