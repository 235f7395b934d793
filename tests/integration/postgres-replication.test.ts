/**
 * Layer 3: the real PostgreSQL pair of the local stack (started once per run by scripts/test.sh),
 * configured by the same renderers the Docker and Kubernetes stacks ship. Behaviour, not existence:
 * rows travel from primary to replica, the replica refuses writes, it streams through its own slot,
 * and it catches up after a restart.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client, DatabaseError } from "pg";
import { loadStackOutputs, StackOutputs } from "../../runtime/outputs";
import { postgresOptions, profile } from "../../scripts/local-stack/stack";
import { startMember, stopMember, superuserClient } from "../../scripts/local-stack/postgres";

const local = postgresOptions(profile("test"));
let outputs: StackOutputs;
let primary: Client;
let replica: Client;
const TABLE = `replication_probe_${process.pid}`;

const connect = async (endpoint: { host: string; port: number }) => {
  const pg = outputs.postgres;
  const client = new Client({ host: endpoint.host, port: endpoint.port, database: pg.database, user: pg.user, password: pg.password });
  // The catch-up test stops the replica under this connection; its termination is expected.
  client.on("error", () => {});
  await client.connect();
  return client;
};

/** Polls the replica until `sql` returns `expected` in its first column; returns the wait in ms. */
async function waitOnReplica(client: Client, sql: string, params: unknown[], expected: unknown, timeoutMs = 10_000): Promise<number> {
  const start = performance.now();
  for (;;) {
    const { rows } = await client.query(sql, params);
    if (rows[0] && Object.values(rows[0])[0] === expected) return performance.now() - start;
    if (performance.now() - start > timeoutMs) assert.fail(`replica did not return ${String(expected)} for ${sql} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

before(async () => {
  outputs = await loadStackOutputs();
  primary = await connect(outputs.postgres.primary);
  replica = await connect(outputs.postgres.replicas[0]);
  await primary.query(`CREATE TABLE ${TABLE} (id bigserial PRIMARY KEY, note text NOT NULL)`);
  await waitOnReplica(replica, "SELECT to_regclass($1) IS NOT NULL AS present", [TABLE], true);
});

after(async () => {
  await primary?.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await Promise.all([primary?.end(), replica?.end().catch(() => undefined)]);
});

describe("PostgreSQL streaming replication (local stack)", () => {
  it("US1-2: a row committed on the primary is read on the replica within the spec's 10 s", async () => {
    const { rows } = await primary.query(`INSERT INTO ${TABLE} (note) VALUES ('order 1') RETURNING id`);
    const delay = await waitOnReplica(replica, `SELECT note FROM ${TABLE} WHERE id = $1`, [rows[0].id], "order 1");
    console.log(`replication delay (commit on primary → visible on replica): ${delay.toFixed(1)} ms`);
    assert.ok(delay < 10_000);
  });

  it("the replica is in recovery and rejects writes with PostgreSQL's read-only error", async () => {
    assert.equal((await replica.query("SELECT pg_is_in_recovery() AS r")).rows[0].r, true);
    assert.equal((await primary.query("SELECT pg_is_in_recovery() AS r")).rows[0].r, false);
    await assert.rejects(replica.query(`INSERT INTO ${TABLE} (note) VALUES ('nope')`), (e: unknown) => {
      assert.ok(e instanceof DatabaseError);
      assert.equal(e.code, "25006"); // read_only_sql_transaction
      assert.equal(e.message, "cannot execute INSERT in a read-only transaction");
      return true;
    });
  });

  it("pg_stat_replication shows the replica streaming through its own physical slot", async () => {
    const su = await superuserClient(local);
    try {
      const { rows } = await su.query(`
        SELECT r.application_name, r.state, s.slot_name, s.slot_type, s.active, s.wal_status, r.usename
          FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid`);
      assert.deepEqual(rows, [{ application_name: "replica_1", state: "streaming", slot_name: "replica_1", slot_type: "physical", active: true, wal_status: "reserved", usename: "replicator" }]);
      const setting = await su.query("SELECT setting, unit FROM pg_settings WHERE name = 'max_slot_wal_keep_size'");
      assert.deepEqual(setting.rows[0], { setting: "512", unit: "MB" });
    } finally {
      await su.end();
    }
  });

  it("replicates through a REPLICATION role that is not a superuser; every password is SCRAM", async () => {
    const su = await superuserClient(local);
    try {
      const { rows } = await su.query(`SELECT rolname, rolsuper, rolreplication, rolpassword LIKE 'SCRAM-SHA-256$%' AS scram FROM pg_authid WHERE rolname IN ('replicator', 'shopfds', 'postgres') ORDER BY rolname`);
      assert.deepEqual(rows, [
        { rolname: "postgres", rolsuper: true, rolreplication: true, scram: true },
        { rolname: "replicator", rolsuper: false, rolreplication: true, scram: true },
        { rolname: "shopfds", rolsuper: false, rolreplication: false, scram: true },
      ]);
    } finally {
      await su.end();
    }
    const wrong = new Client({ ...outputs.postgres.primary, database: outputs.postgres.database, user: outputs.postgres.user, password: "wrong" });
    await assert.rejects(wrong.connect(), /password authentication failed for user "shopfds"/);
  });

  it("a stopped replica catches up on restart with the rows written while it was down", async () => {
    assert.equal(await stopMember(local, "replica-1"), true);
    try {
      await assert.rejects(connect(outputs.postgres.replicas[0]), /ECONNREFUSED/);
      await primary.query(`INSERT INTO ${TABLE} (note) SELECT 'while down ' || g FROM generate_series(1, 500) g`);
      const su = await superuserClient(local);
      try {
        const slot = await su.query("SELECT active, restart_lsn IS NOT NULL AS holds_wal FROM pg_replication_slots WHERE slot_name = 'replica_1'");
        assert.deepEqual(slot.rows[0], { active: false, holds_wal: true }, "the slot keeps the WAL the replica has not received");
      } finally {
        await su.end();
      }
    } finally {
      await startMember(local, "replica-1");
    }
    const restarted = await connect(outputs.postgres.replicas[0]);
    try {
      const wait = await waitOnReplica(restarted, `SELECT count(*)::int AS n FROM ${TABLE} WHERE note LIKE 'while down %'`, [], 500);
      console.log(`replica caught up with 500 rows written while it was down, ${wait.toFixed(1)} ms after restart`);
    } finally {
      await restarted.end();
    }
  });
});
