/**
 * Layer 3: the local stack's own life cycle through its command line, on a profile of its own
 * (separate ports and directory): idempotent start, status, stop by PID with data kept, restart on the
 * kept data, and clean leaving no process and no directory behind.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { postgresBinDir } from "../../scripts/local-stack/postgres";
import { giveToServiceUser, isAlive } from "../../scripts/local-stack/process";
import { testPorts } from "../support/ports";

const ROOT = path.resolve(__dirname, "../..");
const parent = mkdtempSync(path.join(tmpdir(), "shopfds-lifecycle-"));
giveToServiceUser(parent);
const dir = path.join(parent, "stack");
const B = testPorts("lifecycle");
const env = { ...process.env, SHOPFDS_LOCAL_STACK_DIR: dir, SHOPFDS_LOCAL_PORT_BASE: String(B) };
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
    assert.match(first.stdout, new RegExp(`PostgreSQL primary {3}postgres:\\/\\/shopfds@127\\.0\\.0\\.1:${B + 32}\\/shopfds`));
    assert.match(first.stdout, new RegExp(`PostgreSQL replica 1 postgres:\\/\\/shopfds@127\\.0\\.0\\.1:${B + 33}\\/shopfds \\(read-only, streaming\\)`));
    assert.match(first.stdout, new RegExp(`Redis Cluster {8}${[1, 2, 3, 4, 5, 6].map((i) => `127\\.0\\.0\\.1:${B + i}`).join(" ")} \\(3 masters \\+ 3 replicas`));
    assert.match(first.stderr, /cluster formed: 6 nodes, state ok/);
    // The versions it prints are the servers' own answers: the same as the installed binaries say.
    const installed = {
      postgres: /\(PostgreSQL\) (\S+)/.exec(execFileSync(path.join(postgresBinDir(), "postgres"), ["--version"], { encoding: "utf8" }))?.[1],
      redis: /v=(\S+)/.exec(execFileSync("redis-server", ["--version"], { encoding: "utf8" }))?.[1],
      rabbitmq: execFileSync("dpkg-query", ["-W", "-f=${Version}", "rabbitmq-server"], { encoding: "utf8" }).split("-")[0],
    };
    assert.ok(installed.postgres && installed.redis && installed.rabbitmq, JSON.stringify(installed));
    assert.match(first.stdout, new RegExp(`Versions {13}PostgreSQL ${installed.postgres!.replace(/\./g, "\\.")}, Redis ${installed.redis!.replace(/\./g, "\\.")}, RabbitMQ ${installed.rabbitmq!.replace(/\./g, "\\.")}\n`));
    assert.match(first.stdout, /Debian's packages; the Docker and Kubernetes stacks run the images they pin: postgres:15\.8-bookworm, redis:7\.0\.15-bookworm, rabbitmq:3\.13\.7-management/);
    assert.match(first.stdout, new RegExp(`RabbitMQ {13}amqp:\\/\\/shopfds:\\*\\*\\*@127\\.0\\.0\\.1:${B + 72}\\/shopfds \\(management http:\\/\\/127\\.0\\.0\\.1:${B + 73}\\/\\)`), "the password is masked");

    const status = cli("status");
    assert.equal(status.status, 0);
    const running = pids(status.stdout);
    assert.equal(running.length, 17, "2 PostgreSQL servers, 6 Redis nodes, a RabbitMQ node and its epmd, the SMTP sink, Prometheus, Alertmanager, node-exporter, redis_exporter, the trace sink, the webhook sink");
    assert.ok(running.every(isAlive));

    const again = cli("start");
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(pids(cli("status").stdout), running, "a second start leaves the running servers alone");

    const stop = cli("stop");
    assert.match(stop.stdout, /stopped: postgres replica-1, postgres primary, redis node-0, redis node-1, redis node-2, redis node-3, redis node-4, redis node-5, rabbitmq node, rabbitmq epmd, smtp sink, monitoring prometheus, monitoring alertmanager, monitoring redis-exporter, monitoring node-exporter, monitoring trace-sink, monitoring webhook-sink \(data kept in /);
    assert.ok(running.every((pid) => !isAlive(pid)), "stop ends every server");
    assert.equal(cli("status").status, 3, "status exits 3 while stopped");
    assert.ok(existsSync(path.join(dir, "postgres", "primary", "data", "PG_VERSION")));

    const restart = cli("start");
    assert.equal(restart.status, 0, restart.stderr);
    assert.doesNotMatch(restart.stderr, /initdb|pg_basebackup/, "a restart reuses the kept data");
    assert.match(restart.stderr, /cluster already formed: 6 nodes, state ok/, "the cluster re-forms from its nodes.conf, not anew");
    const restarted = pids(cli("status").stdout);

    const clean = cli("clean");
    assert.equal(clean.status, 0);
    assert.ok(restarted.every((pid) => !isAlive(pid)), "clean leaves no process behind");
    assert.equal(existsSync(dir), false, "clean removes the stack's directory");
  });
});
