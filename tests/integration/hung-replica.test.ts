/**
 * Layer 3: a *hung* replica (SIGSTOP: its TCP connections stay open, nothing answers) against the
 * router with its shipped settings, on a PostgreSQL pair of this file's own. Reads already waiting on
 * the replica's open connections and reads that arrive meanwhile must all succeed, none slower than the
 * replica read bound plus one primary read; the replica leaves rotation and returns once resumed.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_OPTIONS } from "../../runtime/db/options";
import { Database } from "../../runtime/db/router";
import type { PostgresOutputs } from "../../runtime/outputs";
import { type LocalPostgresOptions, startPostgres, stopPostgres } from "../../scripts/local-stack/postgres";
import { giveToServiceUser, postmasterPid } from "../../scripts/local-stack/process";
import { until } from "../support/databases";
import { testPorts } from "../support/ports";

const parent = mkdtempSync(path.join(tmpdir(), "shopfds-hung-"));
giveToServiceUser(parent);
const pair: LocalPostgresOptions = { dir: path.join(parent, "pg"), primaryPort: testPorts("hungServers") + 32, replicas: 1, database: "shopfds", user: "shopfds" };
let outputs: PostgresOutputs;
let db: Database;
let stopped: number[] = [];

/** The replica's postmaster and its backends (each backend is a session of its own, so not a group). */
function replicaProcesses(): number[] {
  const pid = postmasterPid(path.join(pair.dir, "replica-1", "data"));
  assert.ok(pid, "the replica's postmaster");
  return [pid, ...execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number)];
}

before(async () => {
  outputs = await startPostgres(pair);
  db = await Database.connect(outputs); // the shipped defaults: nothing shortened for the test
  await db.query("CREATE TABLE hung_reads (id int PRIMARY KEY, v text)");
  await db.query("INSERT INTO hung_reads SELECT g, 'row ' || g FROM generate_series(1, 100) g");
  await until("the rows on the replica", 10_000, async () => (await db.query("SELECT count(*)::int AS n FROM hung_reads", [], { target: "replica" }).catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n === 100);
});

after(async () => {
  for (const pid of stopped) {
    try {
      process.kill(pid, "SIGCONT");
    } catch {
      /* gone */
    }
  }
  await db?.close().catch(() => undefined);
  await stopPostgres(pair);
  rmSync(parent, { recursive: true, force: true });
});

describe("a hung replica (SIGSTOP)", () => {
  it("every read succeeds, none slower than the replica read bound plus one primary read; the replica leaves rotation and comes back", { timeout: 60_000 }, async () => {
    // Open connections on the replica first (the reads in flight when it hangs use them).
    await Promise.all(Array.from({ length: 10 }, (_, i) => db.query("SELECT v FROM hung_reads WHERE id = $1", [i + 1])));
    const replicaReadsBefore = db.stats().reads.replicas;
    assert.ok(replicaReadsBefore >= 10, "reads were going to the replica");

    stopped = replicaProcesses();
    for (const pid of stopped) process.kill(pid, "SIGSTOP");
    const timed = async (id: number) => {
      const t = performance.now();
      const { rows } = await db.query("SELECT v FROM hung_reads WHERE id = $1", [id]);
      return { ms: performance.now() - t, value: rows[0]?.v };
    };
    // In flight on the hung replica's open connections…
    const inFlight = await Promise.all(Array.from({ length: 10 }, (_, i) => timed(i + 1)));
    // …and arriving afterwards, one after another.
    const later: { ms: number; value: string }[] = [];
    for (let i = 0; i < 20; i++) later.push(await timed(50 + i));

    const bound = DEFAULT_OPTIONS.replicaReadTimeoutMs + 1000; // the bound, plus one primary read (generous on 2 shared cores)
    const slowest = Math.max(...inFlight.map((r) => r.ms), ...later.map((r) => r.ms));
    console.log(`    hung replica: ${inFlight.length} reads in flight, slowest ${Math.max(...inFlight.map((r) => r.ms)).toFixed(0)} ms; ${later.length} later reads, slowest ${Math.max(...later.map((r) => r.ms)).toFixed(0)} ms (bound ${DEFAULT_OPTIONS.replicaReadTimeoutMs} ms + a primary read)`);
    assert.deepEqual(inFlight.map((r) => r.value), Array.from({ length: 10 }, (_, i) => `row ${i + 1}`), "no read failed or lost its row");
    assert.deepEqual(later.map((r) => r.value), Array.from({ length: 20 }, (_, i) => `row ${50 + i}`));
    assert.ok(slowest < bound, `slowest read ${slowest.toFixed(0)} ms (bound ${bound} ms)`);
    assert.ok(Math.max(...later.slice(1).map((r) => r.ms)) < 500, "once out of rotation, reads go straight to the primary");
    assert.equal(db.stats().replicas[0]!.healthy, false, "the replica is out of rotation");
    assert.ok(db.stats().fallbacks >= 10);

    for (const pid of stopped) process.kill(pid, "SIGCONT");
    stopped = [];
    const before = db.stats().reads.replicas;
    await until("reads on the replica again", 15_000, async () => {
      await db.query("SELECT v FROM hung_reads WHERE id = 1");
      return db.stats().reads.replicas > before;
    });
  });
});
