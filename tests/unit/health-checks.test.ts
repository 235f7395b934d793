/**
 * Layer 1: the health checks' own decisions, on the states the router and the producer report (their
 * real behaviour under the fault is proven in tests/integration/task-faults.test.ts and
 * tests/e2e/broker-alarm.test.ts; here each branch, with its negative case).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Database, DatabaseStats } from "../../runtime/db/router";
import { postgresChecks, rabbitMqCheck } from "../../runtime/health/checks";

const database = (stats: Partial<DatabaseStats>): Database =>
  ({ query: async () => ({ rows: [{ "?column?": 1 }], rowCount: 1 }), stats: () => ({ reads: { primary: 0, replicas: 0 }, writes: 0, fallbacks: 0, replicas: [], ...stats }) }) as unknown as Database;

describe("health checks", () => {
  it("postgres:primary fails when the pool's last new connection was refused within a minute, though SELECT 1 passed on a held one", async () => {
    const refused = { at: Date.now() - 5_000, message: "sorry, too many clients already", code: "53300" };
    const r = await postgresChecks(database({ primaryConnectFailure: refused }))[0]!.run();
    assert.equal(r.status, "fail");
    assert.match(String(r.output), /refused this pool's last new connection 5 s ago \(53300: sorry, too many clients already\)/);
    const old = await postgresChecks(database({ primaryConnectFailure: { ...refused, at: Date.now() - 120_000 } }))[0]!.run();
    assert.notEqual(old.status, "fail", "a refusal two minutes old no longer counts");
    const fine = await postgresChecks(database({}))[0]!.run();
    assert.equal(fine.status, undefined);
    assert.equal(fine.observedUnit, "ms");
  });

  it("rabbitmq:queue warns while the broker blocks the connection, without reading over it; fails while it is down", async () => {
    let read = 0;
    const queueDepth = async () => (read++, 3);
    const blocked = await rabbitMqCheck({ connected: true, blocked: { reason: "low on memory", since: Date.now() - 4_000 }, pendingDeferred: 7, queueDepth }).run();
    assert.equal(blocked.status, "warn");
    assert.match(String(blocked.output), /blocked this connection for 4 s \(low on memory\).*7 task\(s\) kept/);
    assert.equal(read, 0, "a blocked connection is not read by the broker: the check does not wait on it");
    const ok = await rabbitMqCheck({ connected: true, queueDepth }).run();
    assert.deepEqual([ok.status, ok.observedValue, read], [undefined, 3, 1]);
    assert.equal((await rabbitMqCheck({ connected: false, queueDepth }).run()).status, "fail");
  });
});
