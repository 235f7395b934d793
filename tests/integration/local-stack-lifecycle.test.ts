/**
 * Layer 3: the local stack's own life cycle through its command line, on a profile of its own
 * (separate ports and directory): idempotent start, status, stop by PID with data kept, restart on the
 * kept data, and clean leaving no process and no directory behind.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { giveToServiceUser, isAlive } from "../../scripts/local-stack/process";

const ROOT = path.resolve(__dirname, "../..");
const parent = mkdtempSync(path.join(tmpdir(), "shopfds-lifecycle-"));
giveToServiceUser(parent);
const dir = path.join(parent, "stack");
const env = { ...process.env, SHOPFDS_LOCAL_STACK_DIR: dir, SHOPFDS_LOCAL_PORT_BASE: "36400" };
const cli = (command: string) => spawnSync(process.execPath, ["--import", "tsx", "scripts/local-stack.ts", command, "--profile", "test"], { cwd: ROOT, env, encoding: "utf8" });
const pids = (statusOut: string) => [...statusOut.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));

after(() => {
  cli("clean");
  rmSync(parent, { recursive: true, force: true });
});

describe("local stack life cycle", () => {
  it("starts, reports its members, starts again without change, stops by PID keeping data, and cleans up", () => {
    const first = cli("start");
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /PostgreSQL primary {3}postgres:\/\/shopfds@127\.0\.0\.1:36432\/shopfds/);
    assert.match(first.stdout, /PostgreSQL replica 1 postgres:\/\/shopfds@127\.0\.0\.1:36433\/shopfds \(read-only, streaming\)/);

    const status = cli("status");
    assert.equal(status.status, 0);
    const running = pids(status.stdout);
    assert.equal(running.length, 2);
    assert.ok(running.every(isAlive));

    const again = cli("start");
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(pids(cli("status").stdout), running, "a second start leaves the running servers alone");

    const stop = cli("stop");
    assert.match(stop.stdout, /stopped: postgres replica-1, postgres primary \(data kept in /);
    assert.ok(running.every((pid) => !isAlive(pid)), "stop ends both servers");
    assert.equal(cli("status").status, 3, "status exits 3 while stopped");
    assert.ok(existsSync(path.join(dir, "postgres", "primary", "data", "PG_VERSION")));

    const restart = cli("start");
    assert.equal(restart.status, 0, restart.stderr);
    assert.doesNotMatch(restart.stderr, /initdb|pg_basebackup/, "a restart reuses the kept data");
    const restarted = pids(cli("status").stdout);

    const clean = cli("clean");
    assert.equal(clean.status, 0);
    assert.ok(restarted.every((pid) => !isAlive(pid)), "clean leaves no process behind");
    assert.equal(existsSync(dir), false, "clean removes the stack's directory");
  });
});
