/**
 * Layer 3: replicas found by DNS, as the prod stack finds CloudNativePG's replica pods (a headless
 * Service: one A record per ready replica). Three real replicas of this file's own primary listen on
 * 127.0.0.2–4, all on one port, behind one name served by a real DNS server on loopback; the router
 * runs with its shipped settings (lag threshold, lag checks, re-resolution interval), told only which
 * DNS server to ask. Each read asks the server for its own address (inet_server_addr), so the test
 * sees which replica answered, not what the router believes.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Client } from "pg";
import { DEFAULT_OPTIONS } from "../../runtime/db/options";
import { Database } from "../../runtime/db/router";
import { type LocalPostgresOptions, postgresOutputs, preparePostgres, startMember, stopPostgres, superuserClient } from "../../scripts/local-stack/postgres";
import { giveToServiceUser } from "../../scripts/local-stack/process";
import { sleep, until } from "../support/databases";
import { TestDnsServer } from "../support/dns-server";
import { testPorts } from "../support/ports";

const NAME = "shopfds-test-pg-replicas.shopfds-test.svc.cluster.local";
const [R1, R2, R3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
const parent = mkdtempSync(path.join(tmpdir(), "shopfds-discovery-"));
giveToServiceUser(parent);
const pair: LocalPostgresOptions = {
  dir: path.join(parent, "pg"),
  primaryPort: testPorts("replicaDiscovery") + 2,
  replicas: 3,
  replicaHosts: [R1, R2, R3],
  database: "shopfds",
  user: "shopfds",
};
const INTERVAL = DEFAULT_OPTIONS.discoveryIntervalMs;
let dnsServer: TestDnsServer;
let db: Database;
const admin = new Map<string, Client>();

/** Which server answers each of `n` reads routed by the router (not pinned to a target). */
async function whoAnswers(n: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const { rows } = await db.query("SELECT host(inet_server_addr()) AS a FROM discovery_rows LIMIT 1");
    seen.set(rows[0].a, (seen.get(rows[0].a) ?? 0) + 1);
  }
  return seen;
}

async function member(name: "primary" | "replica-1" | "replica-2" | "replica-3"): Promise<Client> {
  let c = admin.get(name);
  if (!c) {
    c = await superuserClient(pair, name);
    admin.set(name, c);
  }
  return c;
}

async function caughtUp(name: "replica-1" | "replica-2" | "replica-3"): Promise<void> {
  const { rows } = await (await member("primary")).query("SELECT pg_current_wal_lsn()::text AS lsn");
  const replica = await member(name);
  await until(`${name} replays the primary's WAL`, 15_000, async () => (await replica.query("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok", [rows[0].lsn])).rows[0].ok);
}

before(async () => {
  dnsServer = await TestDnsServer.start(testPorts("replicaDiscovery"));
  dnsServer.set(NAME, [R1, R2]);
  // The primary and the first two replicas; the third joins the name later.
  preparePostgres(pair);
  for (const name of ["primary", "replica-1", "replica-2"]) await startMember(pair, name);
  const { primary, replicas, ...credentials } = postgresOutputs(pair);
  db = await Database.connect({
    ...credentials,
    primary,
    // The fallback while the name lists no replica (the prod stack's `-ro` Service).
    replicas: [replicas[0]],
    replicaDiscovery: { host: NAME, port: pair.primaryPort + 1, dnsServers: [dnsServer.address] },
    readOnlyFunctions: ["host", "inet_server_addr"],
  });
  await db.query("CREATE TABLE discovery_rows (id int PRIMARY KEY, v text)");
  await db.query("INSERT INTO discovery_rows SELECT g, 'row ' || g FROM generate_series(1, 10) g");
  await caughtUp("replica-1");
  await caughtUp("replica-2");
});

after(async () => {
  for (const name of ["replica-1", "replica-2", "replica-3"] as const) await admin.get(name)?.query("SELECT pg_wal_replay_resume()").catch(() => undefined);
  await db?.close().catch(() => undefined);
  for (const c of admin.values()) await c.end().catch(() => undefined);
  await stopPostgres(pair);
  await dnsServer?.close().catch(() => undefined);
  rmSync(parent, { recursive: true, force: true });
});

describe("replicas behind one DNS name (replicaDiscovery)", () => {
  it("resolves the name into one pool per replica, and reads spread over both", async () => {
    assert.deepEqual(
      db.stats().replicas.map((r) => r.name),
      [`${R1}:${pair.primaryPort + 1}`, `${R2}:${pair.primaryPort + 1}`],
    );
    assert.equal(db.stats().discovery?.source, "dns");
    const seen = await whoAnswers(100);
    assert.deepEqual([...seen.keys()].sort(), [R1, R2], "every read on a replica, both replicas used");
    assert.ok(seen.get(R1)! >= 30 && seen.get(R2)! >= 30, `round robin over both: ${JSON.stringify([...seen])}`);
  });

  it("a replica whose replay is paused past the lag threshold leaves rotation alone, and returns once it catches up", { timeout: 60_000 }, async () => {
    await (await member("replica-1")).query("SELECT pg_wal_replay_pause()");
    let n = 1000;
    const writing = setInterval(() => void db.query("INSERT INTO discovery_rows VALUES ($1, 'w')", [n++]).catch(() => undefined), 200);
    try {
      await until("replica-1 past the lag threshold", DEFAULT_OPTIONS.maxLagMs + 10_000, async () => (db.stats().replicas.find((r) => r.name.startsWith(R1))?.lagMs ?? 0) > DEFAULT_OPTIONS.maxLagMs);
      const seen = await whoAnswers(50);
      assert.deepEqual([...seen.keys()], [R2], `only the replica in time serves reads: ${JSON.stringify([...seen])}`);
      const r2 = db.stats().replicas.find((r) => r.name.startsWith(R2));
      assert.ok(r2 && r2.lagMs !== undefined && r2.lagMs < DEFAULT_OPTIONS.maxLagMs, "the other replica is measured on its own server");
    } finally {
      clearInterval(writing);
    }
    await (await member("replica-1")).query("SELECT pg_wal_replay_resume()");
    await until("replica-1 back in rotation", 10_000, async () => (await whoAnswers(4)).has(R1));
  });

  it("read-your-writes holds on whichever replica serves the read; a replica behind the write is skipped only for that scope", { timeout: 60_000 }, async () => {
    // replica-2 stops replaying (just now: within the lag threshold, so it stays in rotation).
    await (await member("replica-2")).query("SELECT pg_wal_replay_pause()");
    await sleep(DEFAULT_OPTIONS.lagCheckIntervalMs * 2);
    const servedInScope = new Map<string, number>();
    await db.withSession(async () => {
      await db.query("INSERT INTO discovery_rows VALUES (5000, 'mine')");
      for (let i = 0; i < 40; i++) {
        const { rows } = await db.query("SELECT v, host(inet_server_addr()) AS a FROM discovery_rows WHERE id = 5000");
        assert.equal(rows.length, 1, `read ${i} in the scope sees the scope's write`);
        const where = rows[0].a ?? "primary";
        servedInScope.set(where, (servedInScope.get(where) ?? 0) + 1);
        await sleep(50);
      }
    });
    assert.ok(!servedInScope.has(R2), `the paused replica never served the scope: ${JSON.stringify([...servedInScope])}`);
    assert.ok(servedInScope.has(R1), `the replica that replayed the write served the scope once measured: ${JSON.stringify([...servedInScope])}`);
    // Outside the scope the paused replica is still in rotation (within the threshold) and has not the row.
    let staleOnR2 = 0;
    for (let i = 0; i < 20; i++) {
      const { rows } = await db.query("SELECT host(inet_server_addr()) AS a, (SELECT count(*)::int FROM discovery_rows WHERE id = 5000) AS n FROM discovery_rows LIMIT 1");
      if (rows[0].a === R2 && rows[0].n === 0) staleOnR2++;
    }
    assert.ok(staleOnR2 > 0, "outside the scope the paused replica serves (so the scope's guard was what kept it away)");
    await (await member("replica-2")).query("SELECT pg_wal_replay_resume()");
    await caughtUp("replica-2");
  });

  it("a third replica added to the name is used within the re-resolution interval; one removed leaves rotation", { timeout: 90_000 }, async () => {
    await startMember(pair, "replica-3");
    await caughtUp("replica-3");
    dnsServer.set(NAME, [R1, R2, R3]);
    const added = await until("a read served by the added replica", INTERVAL + 2_000, async () => (await whoAnswers(3)).has(R3));
    assert.ok(added <= INTERVAL + 2_000, `the added replica served within ${INTERVAL} ms (+ a measurement): ${Math.round(added)} ms`);
    dnsServer.set(NAME, [R2, R3]);
    await until("the removed replica out of the router's list", INTERVAL + 2_000, async () => !db.stats().replicas.some((r) => r.name.startsWith(R1)));
    const seen = await whoAnswers(60);
    assert.deepEqual([...seen.keys()].sort(), [R2, R3], `the removed replica serves nothing: ${JSON.stringify([...seen])}`);
  });

  it("keeps the replicas it knows when DNS fails, and falls back to the configured replicas when the name lists none", { timeout: 60_000 }, async () => {
    dnsServer.remove(NAME); // NXDOMAIN: no replica ready
    await until("the fallback in use", INTERVAL + 2_000, async () => db.stats().discovery?.source === "fallback");
    assert.deepEqual(
      db.stats().replicas.map((r) => r.name),
      [`${R1}:${pair.primaryPort + 1}`],
    );
    const seen = await whoAnswers(10);
    assert.deepEqual([...seen.keys()], [R1], "the fallback endpoint serves reads");
    dnsServer.set(NAME, [R2, R3]);
    await until("the discovered replicas back", INTERVAL + 2_000, async () => db.stats().discovery?.source === "dns");
    const resolutions = db.stats().discovery!.resolutions;
    await dnsServer.close(); // the DNS server gone: resolutions fail (bounded), the known replicas stay
    await until("a failed resolution", INTERVAL + 5_000, async () => db.stats().discovery!.resolutions > resolutions);
    assert.match(db.stats().discovery?.lastError ?? "", /resolving .* failed/);
    assert.equal(db.stats().discovery?.source, "dns");
    const after = await whoAnswers(20);
    assert.deepEqual([...after.keys()].sort(), [R2, R3]);
  });
});
