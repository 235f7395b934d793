/**
 * End to end: the developer's make targets on a database of their own on the test stack — the
 * commands a newcomer types, not the functions behind them. `make setup` and `make test` are what CI's
 * `.ci/run` runs on a fresh clone (a test cannot run the suite it is part of).
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import pg from "pg";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { migrationNames } from "../../service/bin/migrate";
import { Database } from "../../runtime/db/router";
import { authenticate } from "../../service/shop/accounts";
import { createMigratedDatabase, until } from "../support/databases";
import { profile } from "../../scripts/local-stack/stack";

const ROOT = path.resolve(__dirname, "../..");
const dir = mkdtempSync(path.join(tmpdir(), "shopfds-make-"));
const outputsFile = path.join(dir, "outputs.json");
let outputs: StackOutputs;
let drop: () => Promise<void> = async () => undefined;

const make = (target: string) =>
  promisify(execFile)("make", ["--no-print-directory", target], {
    cwd: ROOT,
    env: { ...process.env, SHOPFDS_OUTPUTS_FILE: outputsFile, SHOPFDS_STACK_OUTPUTS: "", SHOPFDS_PULUMI_STACK: "" },
    maxBuffer: 16 * 1024 * 1024,
  });

/** `make <args>` with `input` on its stdin (not a terminal). */
function makeWithInput(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("make", ["--no-print-directory", ...args], { cwd: ROOT, env: { ...process.env, SHOPFDS_OUTPUTS_FILE: outputsFile, SHOPFDS_STACK_OUTPUTS: "", SHOPFDS_PULUMI_STACK: "" } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

async function counts(): Promise<Record<string, number>> {
  const c = new pg.Client({ ...outputs.postgres.primary, database: outputs.postgres.database, user: outputs.postgres.user, password: outputs.postgres.password });
  await c.connect();
  try {
    const tables = ["users", "products", "orders", "reviews", "carts", "fds_transactions"];
    const { rows } = await c.query(`SELECT ${tables.map((t) => `(SELECT count(*) FROM ${t})::int AS ${t}`).join(", ")}`);
    return rows[0];
  } finally {
    await c.end();
  }
}

before(async () => {
  const base = await loadStackOutputs();
  const created = await createMigratedDatabase(base, `shopfds_make_${process.pid}`, { migrate: false });
  drop = created.drop;
  outputs = { ...base, postgres: created.postgres };
  writeFileSync(outputsFile, JSON.stringify(outputs), { mode: 0o600 });
});

after(async () => {
  await drop();
  rmSync(dir, { recursive: true, force: true });
});

describe("make targets (US5)", () => {
  it("make help lists every target with what it does", async () => {
    const { stdout } = await make("help");
    for (const t of ["setup", "dev", "down", "status", "health", "logs", "outputs", "clean", "migrate", "dlq", "reset-db", "seed", "test", "bench"]) assert.match(stdout, new RegExp(`make ${t}\\s+\\S`), t);
  });

  it("make dlq lists the stack's dead letters; a purge without a terminal is refused and deletes nothing", async () => {
    assert.match((await make("dlq")).stdout, /^\d+ dead letter\(s\) in shopfds\.dead/m);
    const refused = await makeWithInput(["dlq", "ARGS=purge"], "");
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /purge: \d+ dead letter\(s\) would go; run on a terminal to confirm, or pass --yes/);
  });

  it("make migrate applies every migration to an empty database, and a second run applies none", async () => {
    assert.match((await make("migrate")).stdout, new RegExp(`applied ${(await migrationNames()).length} migration\\(s\\)`));
    assert.match((await make("migrate")).stdout, /nothing to do: the schema is up to date/);
  });

  it("US5-2: make seed creates 1000 users, 500 products, 10000 orders, 5000 reviews and carts; a rerun replaces them", async () => {
    await make("seed");
    const first = await counts();
    assert.deepEqual(first, { users: 1000, products: 500, orders: 10000, reviews: 5000, carts: 300, fds_transactions: 10000 });
    await make("seed");
    assert.deepEqual(await counts(), first, "idempotent (FR-032)");
  });

  it("make admin creates an admin from a password on stdin (scrypt-hashed), refuses a short one, and resets on a rerun", async () => {
    const made = await makeWithInput(["admin", "EMAIL=Ops@Shop.Test"], "a very long admin password\n");
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /^admin ops@shop\.test \(user \d+\) is ready$/m);
    assert.doesNotMatch(made.stdout + made.stderr, /a very long admin password/, "the password is never echoed");
    const db = await Database.connect(outputs.postgres);
    try {
      const account = await authenticate(db, "ops@shop.test", "a very long admin password");
      assert.deepEqual([account?.email, account?.role], ["ops@shop.test", "admin"]);
      const short = await makeWithInput(["admin", "EMAIL=ops@shop.test"], "short");
      assert.equal(short.code, 2, "make reports the failure");
      assert.match(short.stderr, /password: must be at least 12 characters \(got 5\); nothing was changed/);
      assert.ok(await authenticate(db, "ops@shop.test", "a very long admin password"), "the old password still works");
      assert.equal((await makeWithInput(["admin", "EMAIL=ops@shop.test"], "the replacement password")).code, 0);
      assert.equal(await authenticate(db, "ops@shop.test", "a very long admin password"), undefined);
      assert.ok(await authenticate(db, "ops@shop.test", "the replacement password"));
      const bad = await makeWithInput(["admin", "EMAIL=not-an-email"], "a very long admin password");
      assert.match(bad.stderr, /EMAIL: must be an e-mail address \(got "not-an-email"\)/);
    } finally {
      await db.close();
    }
  });

  // The running stack here is the test stack (make test points the dev profile at it); it runs the
  // servers, not the service, worker and scheduler.
  it("make health: a row per component of the running stack, judged by the runtime's checks; the apps not running fail it", async () => {
    const { code, stdout } = await makeWithInput(["health"], "");
    const rows = new Map(
      stdout
        .split("\n")
        .slice(1)
        .filter(Boolean)
        .map((l) => {
          const [component, status, ...detail] = l.split(/\s{2,}/);
          return [component!, { status, detail: detail.join(" ") }];
        }),
    );
    for (const c of ["postgres:primary", "postgres:replica-1:lag", "redis:cluster", "redis:memory", "rabbitmq:celery", "rabbitmq:shopfds.email", "smtp", "prometheus", "alertmanager"]) assert.equal(rows.get(c)?.status, "pass", `${c}: ${JSON.stringify(rows.get(c))}\n${stdout}`);
    assert.match(rows.get("smtp")!.detail, /^220 /, "the SMTP sink's greeting");
    for (const app of ["service", "worker", "scheduler"]) assert.deepEqual(rows.get(app), { status: "fail", detail: "not running (make dev starts it)" }, app);
    assert.equal(code, 2, "make reports the failing rows (the command exits 1)");
  });

  it("make logs: every process's last lines, then what is appended, each with its prefix; Ctrl-C stops it", async () => {
    const stackDir = profile("dev").dir;
    const probeDir = path.join(stackDir, "apps");
    mkdirSync(probeDir, { recursive: true });
    const probe = path.join(probeDir, `make-logs-probe-${process.pid}.log`);
    const child = spawn("make", ["--no-print-directory", "logs", "LINES=2"], { cwd: ROOT, detached: true, env: process.env });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    try {
      await until("the servers' last lines", 20_000, async () => ["postgres/primary", "postgres/replica-1", "redis/node-0", "redis/node-5", "rabbitmq", "smtp/smtp-sink", "monitoring/prometheus"].every((name) => new RegExp(`^\\[${name}\\s*\\] `, "m").test(out)));
      appendFileSync(probe, "first line\nsecond ");
      appendFileSync(probe, "half, now whole\n");
      await until("the appended line, whole", 10_000, async () => new RegExp(`^\\[apps/make-logs-probe-${process.pid}\\s*\\] second half, now whole$`, "m").test(out));
      assert.match(out, new RegExp(`^\\[apps/make-logs-probe-${process.pid}\\s*\\] first line$`, "m"));
    } finally {
      process.kill(-child.pid!, "SIGINT");
      rmSync(probe, { force: true });
    }
    await until("make logs stopped by Ctrl-C", 10_000, async () => child.exitCode !== null || child.signalCode !== null);
  });

  it("US5-3: make reset-db drops everything and recreates the latest schema, empty", async () => {
    const { stdout } = await make("reset-db");
    assert.match(stdout, new RegExp(`applied ${(await migrationNames()).length} migration\\(s\\)`));
    assert.deepEqual(await counts(), { users: 0, products: 0, orders: 0, reviews: 0, carts: 0, fds_transactions: 0 });
  });
});
