/**
 * Layer 3: the read/write router against the real pair of the local stack. Each rule is proven by
 * where the statement ran (`pg_is_in_recovery()` is true only on the replica).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client } from "pg";
import { Database } from "../../runtime/db/router";
import { DatabaseOptionsError } from "../../runtime/db/options";
import { loadStackOutputs, StackOutputs } from "../../runtime/outputs";
import { startMember, stopMember, superuserClient } from "../../scripts/local-stack/postgres";
import { postgresOptions, profile } from "../../scripts/local-stack/stack";
import { sleep, until } from "../support/databases";

const local = postgresOptions(profile("test"));
const TABLE = `router_probe_${process.pid}`;
let outputs: StackOutputs;
let db: Database;
let replicaSu: Client;
const onReplica = async (d: Database, sql = "SELECT pg_is_in_recovery() AS r", params: unknown[] = []) => (await d.query(sql, params)).rows[0].r as boolean;

before(async () => {
  outputs = await loadStackOutputs();
  db = await Database.connect({ ...outputs.postgres, lagCheckIntervalMs: 100, probeIntervalMs: 200 });
  await db.query(`CREATE TABLE ${TABLE} (id serial PRIMARY KEY, note text)`);
  replicaSu = await superuserClient(local, "replica-1", local.database);
  replicaSu.on("error", () => {});
  await until("table on replica", 5000, async () => (await replicaSu.query("SELECT to_regclass($1) IS NOT NULL AS ok", [TABLE])).rows[0].ok);
});

after(async () => {
  await replicaSu.query("SELECT pg_wal_replay_resume()").catch(() => undefined);
  await replicaSu.end().catch(() => undefined);
  await db.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await db.close();
});

describe("read/write routing", () => {
  it("US1-1: sends a plain SELECT to the replica", async () => {
    assert.equal(await onReplica(db), true);
  });

  it("US1-3: sends INSERT/UPDATE/DELETE, SELECT … FOR UPDATE, writing CTEs and nextval to the primary", async () => {
    const inserted = await db.query(`INSERT INTO ${TABLE} (note) VALUES ('a') RETURNING pg_is_in_recovery() AS r`);
    assert.equal(inserted.rows[0].r, false);
    assert.equal((await db.query(`UPDATE ${TABLE} SET note = 'b' RETURNING pg_is_in_recovery() AS r`)).rows[0].r, false);
    assert.equal(await onReplica(db, `SELECT pg_is_in_recovery() AS r FROM ${TABLE} FOR UPDATE`), false);
    assert.equal(await onReplica(db, `WITH x AS (INSERT INTO ${TABLE} (note) VALUES ('c') RETURNING id) SELECT pg_is_in_recovery() AS r FROM x`), false);
    assert.equal(await onReplica(db, `SELECT nextval('${TABLE}_id_seq') AS n, pg_is_in_recovery() AS r`), false);
    assert.equal((await db.query(`DELETE FROM ${TABLE} WHERE note = 'c' RETURNING pg_is_in_recovery() AS r`)).rows[0].r, false);
  });

  it("runs a transaction entirely on the primary, on one connection", async () => {
    const seen = await db.transaction(async (client) => {
      await client.query(`INSERT INTO ${TABLE} (note) VALUES ('tx')`);
      const { rows } = await client.query(`SELECT pg_is_in_recovery() AS r, count(*)::int AS n FROM ${TABLE} WHERE note = 'tx'`);
      return rows[0];
    });
    assert.deepEqual(seen, { r: false, n: 1 });
  });

  it("honours explicit targets and a demanded fresh read", async () => {
    assert.equal(await onReplica(db, "SELECT pg_is_in_recovery() AS r", []), true);
    assert.equal((await db.query("SELECT pg_is_in_recovery() AS r", [], { target: "primary" })).rows[0].r, false);
    assert.equal((await db.query("SELECT pg_is_in_recovery() AS r", [], { fresh: true })).rows[0].r, false);
    assert.equal((await db.query("SELECT pg_is_in_recovery() AS r", [], { target: "replica" })).rows[0].r, true);
  });

  it("reads in a session see the session's own write at once, even with replay paused on the replica", async () => {
    await replicaSu.query("SELECT pg_wal_replay_pause()");
    try {
      await db.withSession(async () => {
        const { rows } = await db.query(`INSERT INTO ${TABLE} (note) VALUES ('mine') RETURNING id`);
        const read = await db.query(`SELECT note, pg_is_in_recovery() AS r FROM ${TABLE} WHERE id = $1`, [rows[0].id]);
        assert.deepEqual(read.rows, [{ note: "mine", r: false }]);
      });
      // Outside the session the same read goes to the (paused) replica, which does not have the row yet.
      const outside = await db.query(`SELECT count(*)::int AS n, pg_is_in_recovery() AS r FROM ${TABLE} WHERE note = 'mine'`);
      assert.deepEqual(outside.rows, [{ n: 0, r: true }]);
    } finally {
      await replicaSu.query("SELECT pg_wal_replay_resume()");
    }
  });

  it("stops reading from a replica lagging past the threshold, and returns once it catches up", async () => {
    const lagging = await Database.connect({ ...outputs.postgres, maxLagMs: 500, lagCheckIntervalMs: 100 });
    try {
      await replicaSu.query("SELECT pg_wal_replay_pause()");
      let writing = true;
      const writer = (async () => {
        while (writing) {
          await lagging.query(`INSERT INTO ${TABLE} (note) VALUES ('lag')`);
          await sleep(25);
        }
      })();
      try {
        const left = await until("routing away from the lagging replica", 10_000, async () => !(await onReplica(lagging)));
        const lag = lagging.stats().replicas[0].lagMs as number;
        console.log(`lagging replica left rotation ${left.toFixed(0)} ms after replay was paused (measured lag ${lag} ms > 500 ms)`);
        assert.ok(lag > 500);
        assert.ok(lagging.stats().fallbacks > 0);
      } finally {
        await replicaSu.query("SELECT pg_wal_replay_resume()");
        writing = false;
        await writer;
      }
      const back = await until("routing back to the caught-up replica", 10_000, () => onReplica(lagging));
      console.log(`replica back in rotation ${back.toFixed(0)} ms after replay resumed`);
    } finally {
      await lagging.close();
    }
  });

  it("US1-4: loses no read when the replica stops during a steady stream of reads, and returns to it after restart", async () => {
    let failures = 0;
    let reads = 0;
    let streaming = true;
    const stream = (async () => {
      while (streaming) {
        try {
          await db.query(`SELECT count(*) AS n FROM ${TABLE}`);
          reads++;
        } catch {
          failures++;
        }
        await sleep(2);
      }
    })();
    await sleep(200);
    try {
      assert.equal(await stopMember(local, "replica-1"), true);
      replicaSu.on("error", () => {});
      await sleep(500);
    } finally {
      await startMember(local, "replica-1");
    }
    const started = performance.now();
    await until("reads served by the replica again", 15_000, () => onReplica(db));
    const back = performance.now() - started;
    streaming = false;
    await stream;
    console.log(`replica outage: ${reads} reads, ${failures} failed, ${db.stats().fallbacks} fallbacks; reads returned to the replica ${back.toFixed(0)} ms after its restart`);
    assert.equal(failures, 0);
    assert.ok(reads > 50);
    replicaSu = await superuserClient(local, "replica-1", local.database);
    replicaSu.on("error", () => {});
  });

  it("runs a named prepared statement where it belongs, prepared once per connection and reused", async () => {
    const one = await Database.connect({ ...outputs.postgres, poolSize: 1, lagCheckIntervalMs: 100 });
    try {
      const read = "SELECT pg_is_in_recovery() AS r, $1::int * 2 AS twice";
      for (const n of [1, 2, 3]) assert.deepEqual((await one.query(read, [n], { prepare: "probe.read" })).rows[0], { r: true, twice: n * 2 });
      // The replica's one connection holds the statement once, under its name and text.
      const held = async (target: "replica" | "primary") => (await one.query("SELECT name, statement FROM pg_prepared_statements", [], { target })).rows;
      assert.deepEqual(await held("replica"), [{ name: "probe.read", statement: read }]);
      // A write under a name runs on the primary, and so does a fresh read under the same name.
      await one.query(`INSERT INTO ${TABLE} (note) VALUES ($1)`, ["prepared"], { prepare: "probe.write" });
      assert.equal((await one.query(read, [5], { prepare: "probe.read", fresh: true })).rows[0].r, false);
      assert.deepEqual((await held("primary")).map((r) => r.name).sort(), ["probe.read", "probe.write"]);
      // One name, one text: pg refuses the name for another statement; a bad name is refused before sending.
      await assert.rejects(one.query("SELECT 2 AS other", [], { prepare: "probe.read" }), /Prepared statements must be unique - 'probe.read'/);
      await assert.rejects(one.query(read, [1], { prepare: "" }), { name: "TypeError", message: 'prepare: must be a statement name of 1–63 characters (A–Z, a–z, 0–9, _ . -), got ""' });
      await assert.rejects(one.query(read, [1], { prepare: "x".repeat(64) }), /^TypeError: prepare: must be a statement name of 1–63 characters/);
    } finally {
      await one.close();
    }
  });

  it("counts reads per target for the metrics", () => {
    const s = db.stats();
    assert.ok(s.reads.replicas > 0 && s.reads.primary > 0 && s.writes > 0);
    assert.equal(s.replicas.length, 1);
    assert.equal(s.replicas[0].name, `127.0.0.1:${outputs.postgres.replicas[0].port}`);
  });
});

describe("bad input", () => {
  it("rejects an unknown target by name", async () => {
    await assert.rejects(db.query("SELECT 1", [], { target: "secondary" as never }), { name: "TypeError", message: 'unknown target "secondary": use "auto", "primary" or "replica"' });
  });

  it("names an empty replica list and a malformed port, and never echoes the password", async () => {
    await assert.rejects(Database.connect({ ...outputs.postgres, replicas: [], primary: { host: "127.0.0.1", port: 0 } }), (e: unknown) => {
      assert.ok(e instanceof DatabaseOptionsError);
      assert.deepEqual(e.problems, ["primary.port: must be an integer from 1 to 65535", "replicas: must list at least one replica"]);
      assert.ok(!e.message.includes(outputs.postgres.password));
      return true;
    });
    await assert.rejects(Database.connect({ ...outputs.postgres, maxLagMs: -1 }), { message: "invalid database options:\n  - maxLagMs: must be a positive number of milliseconds" });
  });
});
