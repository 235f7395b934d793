/**
 * Layer 3: the schema's migrations on the real pair of the local stack: up, down to zero, up again; the
 * constraints the schema promises; the log archive; reset-db and its refusals. Runs in a database of
 * its own (created here, dropped after) so other test files keep theirs.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { Client } from "pg";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { superuserClient } from "../../scripts/local-stack/postgres";
import { postgresOptions, profile } from "../../scripts/local-stack/stack";
import { appliedMigrations, migrate, MigrationTargetError, migrationNames, targetFromOutputs, verifyServer, type MigrationTarget } from "../../service/bin/migrate";

const local = postgresOptions(profile("test"));
const DB = `shopfds_migrations_${process.pid}`;
const ROOT = path.resolve(__dirname, "../..");
const TABLES = [
  "app_logs", "app_logs_archive", "blacklist_entries", "blacklist_history", "cart_items", "carts", "celery_taskmeta", "celery_tasksetmeta", "fds_reevaluations", "fds_risk_factors", "fds_transactions",
  "order_items", "orders", "payments", "products", "reports", "reviews", "scheduler_runs", "schema_migrations", "seed_batches", "shopfds_runtime_migrations", "task_log", "task_log_archive", "users",
];
let outputs: StackOutputs;
let target: MigrationTarget;
let su: Client;

async function withClient<T>(t: MigrationTarget, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client(t);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
const tables = () => withClient(target, async (c) => (await c.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).rows.map((r) => r.tablename as string));
const types = () => withClient(target, async (c) => (await c.query("SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE nspname = 'public' AND typtype = 'e' ORDER BY 1")).rows.map((r) => r.typname as string));
const sqlState = async (c: Client, sql: string, params: unknown[] = []) => {
  try {
    await c.query(sql, params);
    return "ok";
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

before(async () => {
  outputs = await loadStackOutputs();
  su = await superuserClient(local, "primary");
  await su.query(`CREATE DATABASE ${DB} OWNER ${outputs.postgres.user}`);
  target = { ...targetFromOutputs(outputs), database: DB };
});

after(async () => {
  await su.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await su.end();
});

describe("migrations", () => {
  it("apply up, undo down to zero and apply up again on the real database", async () => {
    const names = await migrationNames();
    assert.deepEqual(await migrate(target, { direction: "up" }), names);
    assert.deepEqual(await tables(), TABLES);
    assert.deepEqual(await appliedMigrations(target), names);

    assert.deepEqual(await migrate(target, { direction: "down", count: Infinity }), [...names].reverse());
    assert.deepEqual(await tables(), ["schema_migrations", "shopfds_runtime_migrations"], "down to zero leaves only the two migrations tables");
    assert.deepEqual(await types(), [], "down to zero drops every enum type");
    assert.deepEqual(await appliedMigrations(target), []);

    const lines: string[] = [];
    assert.deepEqual(await migrate(target, { direction: "up", log: (l) => lines.push(l) }), names);
    assert.deepEqual(lines, names.map((n) => `MIGRATION ${n} (UP)`), "progress is one line per migration");
    assert.deepEqual(await tables(), TABLES);
    assert.deepEqual(await migrate(target, { direction: "up" }), [], "a second up has nothing to do");
  });

  it("reaches the replica: the schema is replicated like any write", async () => {
    const replica = { ...target, host: outputs.postgres.replicas[0]!.host, port: outputs.postgres.replicas[0]!.port };
    const deadline = Date.now() + 5000;
    let seen: string[] = [];
    while (Date.now() < deadline) {
      seen = await withClient(replica, async (c) => (await c.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).rows.map((r) => r.tablename));
      if (seen.length === TABLES.length) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(seen, TABLES);
  });

  it("enforces what the schema promises", async () => {
    await withClient(target, async (c) => {
      const user = (await c.query("INSERT INTO users (email, password_hash, name) VALUES ('a@test.com', 'x', 'A') RETURNING id")).rows[0].id;
      assert.equal(await sqlState(c, "INSERT INTO users (email, password_hash, name) VALUES ('B@Test.com', 'x', 'B')"), "23514", "e-mail must be lower-case");
      assert.equal(await sqlState(c, "INSERT INTO users (email, password_hash, name) VALUES ('a@test.com', 'x', 'A2')"), "23505", "e-mail is unique");
      assert.equal(await sqlState(c, "INSERT INTO orders (user_id, total_amount) VALUES ($1, -1)", [user]), "23514", "no negative totals");
      assert.equal(await sqlState(c, "INSERT INTO orders (user_id, total_amount) VALUES (999999, 1)"), "23503", "orders need a user");
      assert.equal(await sqlState(c, "INSERT INTO fds_transactions (amount, risk_score, risk_level, decision) VALUES (1, 50, 'extreme', 'block')"), "22P02", "risk level is low/medium/high");
      assert.equal(await sqlState(c, "INSERT INTO fds_transactions (amount, risk_score, risk_level, decision) VALUES (1, 101, 'high', 'block')"), "23514", "risk score is 0..100");
      assert.equal(
        await sqlState(c, "INSERT INTO blacklist_entries (entry_type, value, key_version, reason, source, expires_at) VALUES ('card', '4111111111111111', 1, 'r', 's', now() + interval '7 days')"),
        "23514",
        "a card is stored only as a 64-hex-digit keyed hash",
      );
      assert.equal(
        await sqlState(c, "INSERT INTO blacklist_entries (entry_type, value, reason, source, expires_at) VALUES ('card', repeat('a', 64), 'r', 's', now() + interval '7 days')"),
        "23514",
        "a card hash names its key version",
      );
      assert.equal(
        await sqlState(c, "INSERT INTO blacklist_entries (entry_type, value, key_version, reason, source, expires_at) VALUES ('card', repeat('a', 64), 1, 'r', 's', now() + interval '7 days')"),
        "ok",
      );
      assert.equal(await sqlState(c, "INSERT INTO payments (order_id, amount, method, card_last4) VALUES (1, 10, 'card', '41x1')"), "23514", "only four digits of a card");
      assert.equal(await sqlState(c, "INSERT INTO reports (kind, status) VALUES ('sales', 'completed')"), "23514", "a completed report has a file");
      assert.equal(await sqlState(c, "INSERT INTO reports (kind, status, file_path) VALUES ('sales', 'completed', 'r.csv')"), "23514", "a completed report has its content");
    });
  });

  it("every timestamp default is the time of the insert, not the time of the migration", async () => {
    await withClient(target, async (c) => {
      const constant = await c.query("SELECT table_name || '.' || column_name AS col FROM information_schema.columns WHERE table_schema = current_schema() AND column_default ~ '^''[0-9]'");
      assert.deepEqual(constant.rows, [], "no column has a constant timestamp default");
      // Separate transactions (now() is the transaction's start).
      const a = (await c.query("INSERT INTO users (email, password_hash, name) VALUES ('t1@test.com', 'x', 'T') RETURNING created_at")).rows[0].created_at as Date;
      await new Promise((r) => setTimeout(r, 20));
      const b = (await c.query("INSERT INTO users (email, password_hash, name) VALUES ('t2@test.com', 'x', 'T') RETURNING created_at")).rows[0].created_at as Date;
      assert.ok(b.getTime() - a.getTime() >= 15, `${a.toISOString()} then ${b.toISOString()}`);
      assert.ok(Math.abs(Date.now() - b.getTime()) < 5000);
    });
  });

  it("archive_app_logs moves rows older than the cutoff, in batches, losing none", async () => {
    await withClient(target, async (c) => {
      await c.query(
        `INSERT INTO app_logs (logged_at, level, service, message)
         SELECT timestamptz '2026-06-01 00:00Z' - make_interval(days => d), 'info', 'ecommerce', 'line ' || d FROM generate_series(1, 120) AS d`,
      );
      const moved = (await c.query("SELECT archive_app_logs(timestamptz '2026-06-01 00:00Z' - interval '90 days', 7) AS n")).rows[0].n;
      assert.equal(Number(moved), 30, "days 91..120 are older than 90 days");
      const counts = (await c.query("SELECT (SELECT count(*) FROM app_logs)::int AS live, (SELECT count(*) FROM app_logs_archive)::int AS archived, (SELECT min(logged_at) >= timestamptz '2026-06-01 00:00Z' - interval '90 days' FROM app_logs) AS recent_only")).rows[0];
      assert.deepEqual(counts, { live: 90, archived: 30, recent_only: true });
      assert.equal(await sqlState(c, "SELECT archive_app_logs(now(), 0)"), "P0001", "a zero batch size is refused");
    });
  });
});

describe("reset-db", () => {
  const env = (t: MigrationTarget, extra: Record<string, string> = {}) => ({
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    SHOPFDS_STACK_OUTPUTS: JSON.stringify({ ...outputs, postgres: { ...outputs.postgres, database: t.database } }),
    ...extra,
  });
  const resetDb = (extraEnv: Record<string, string> = {}, args: string[] = []) =>
    promisify(execFile)("bash", [path.join(ROOT, "scripts/reset-db.sh"), ...args], { cwd: ROOT, env: env(target, extraEnv) });

  it("US5-3: drops everything and recreates the latest schema", async () => {
    await withClient(target, async (c) => {
      await c.query("CREATE TABLE stray (x int)");
      await c.query("INSERT INTO products (sku, name, category, price) VALUES ('p1', 'P', 'c', 1)");
    });
    const { stdout } = await resetDb();
    assert.match(stdout, new RegExp(`applied ${(await migrationNames()).length} migration\\(s\\)`));
    assert.deepEqual(await tables(), TABLES, "the stray table is gone, the schema is back");
    assert.equal(await withClient(target, async (c) => (await c.query("SELECT count(*)::int AS n FROM products")).rows[0].n), 0);
  });

  it("refuses a database that is not the configured one, and changes nothing", async () => {
    await withClient(target, (c) => c.query("INSERT INTO products (sku, name, category, price) VALUES ('keep', 'K', 'c', 1)"));
    const replica = outputs.postgres.replicas[0]!;
    await assert.rejects(resetDb({ DATABASE_URL: `postgres://${replica.host}:${replica.port}/${DB}` }), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.equal(e.stderr.trim(), `migrate: refusing to touch ${replica.host}:${replica.port}/${DB}: it is not the configured database (postgres://${target.user}@${target.host}:${target.port}/${DB}): port ${replica.port} is not ${target.port}`);
      assert.ok(!e.stderr.includes(outputs.postgres.password), "no password in the message");
      return true;
    });
    await assert.rejects(resetDb({ SHOPFDS_PULUMI_STACK: "prod" }), (e: { stderr: string }) => /refusing to reset the database of Pulumi stack prod/.test(e.stderr));
    assert.equal(await withClient(target, async (c) => (await c.query("SELECT count(*)::int AS n FROM products WHERE sku = 'keep'")).rows[0].n), 1);
  });

  it("refuses a server that is a replica even when the outputs name it", async () => {
    const replica = outputs.postgres.replicas[0]!;
    await withClient({ ...target, host: replica.host, port: replica.port }, async (c) => {
      await assert.rejects(verifyServer(c, { ...target, host: replica.host, port: replica.port }), (e: Error) => e instanceof MigrationTargetError && /that server is a replica \(in recovery\), not the primary/.test(e.message));
    });
  });
});
