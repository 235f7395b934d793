/**
 * A full restart of the Redis Cluster where every node comes back with a new address, as when all the
 * pods of the StatefulSet are re-created: with the shipped node start script (renderNodeStartScript),
 * which re-reads each peer's address from the host name recorded in nodes.conf, the cluster re-forms
 * and keeps its data; started the plain way on the same files, it does not (the control). Six real
 * redis-server processes on loopback addresses (127.0.91.x, then 127.0.92.x), named in a hosts file in
 * place of cluster DNS; each is stopped by its PID.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { renderNodeStartScript, renderRedisAuthInclude, renderRedisConf } from "../../components/redis/render";
import { isAlive, run, stopPid } from "../../scripts/local-stack/process";
import { sleep, until } from "../support/databases";
import { testPorts } from "../support/ports";

const PORT = testPorts("redisRestart");
const BUS = PORT + 50;
const PASSWORD = "restartTestPassword0123456789";
const dir = mkdtempSync(path.join(tmpdir(), "shopfds-redis-restart-"));
const hostsFile = path.join(dir, "hosts");
const names = [1, 2, 3, 4, 5, 6].map((i) => `node-${i}.shopfds.test`);
const ip = (subnet: number, i: number) => `127.0.${subnet}.${i + 1}`;
let pids: number[] = [];

const nodeDir = (i: number) => path.join(dir, `node-${i}`);
const cli = (host: string, ...args: string[]) => run("redis-cli", ["-h", host, "-p", String(PORT), ...args], { env: { REDISCLI_AUTH: PASSWORD } });

function writeHosts(subnet: number): void {
  writeFileSync(hostsFile, names.map((n, i) => `${ip(subnet, i)} ${n}\n`).join(""));
}

/** Starts node i on `host`, through the start script or as plain redis-server; resolves with its PID once it answers. */
async function start(i: number, host: string, withScript: boolean): Promise<void> {
  const conf = path.join(nodeDir(i), "redis.conf");
  // On one machine every node's outgoing connections would come from 127.0.0.1, which the peers would
  // record as its address; a pod's come from its own IP, as bind-source-addr makes them here.
  const args = ["--bind", host, "--bind-source-addr", host, "--daemonize", "no", "--logfile", path.join(nodeDir(i), "server.log")];
  const child = withScript
    ? spawn("sh", [path.join(nodeDir(i), "start.sh"), ...args], { env: { ...process.env, SHOPFDS_HOSTS_FILE: hostsFile, SHOPFDS_ANNOUNCE_HOSTNAME: names[i]! }, stdio: "ignore", detached: true })
    : spawn("redis-server", [conf, "--cluster-announce-hostname", names[i]!, ...args], { stdio: "ignore", detached: true });
  child.unref();
  pids.push(child.pid!);
  await until(`node ${i} answering on ${host}`, 10_000, async () => (await cli(host, "ping").catch(() => "")).includes("PONG"));
}

async function stopAll(): Promise<void> {
  await Promise.all(pids.map((pid) => stopPid(pid, "SIGTERM")));
  pids = [];
}

/** Runs a key command on the node that owns the key (the others answer MOVED, naming a host only the cluster's DNS knows). */
async function onOwner(subnet: number, ...command: string[]): Promise<string> {
  for (let i = 0; i < 6; i++) {
    const out = (await cli(ip(subnet, i), ...command)).trim();
    if (!/MOVED/.test(out)) return out;
  }
  throw new Error(`no node owns the key of ${command.join(" ")}`);
}

const clusterOk = async (subnet: number) => (await Promise.all(names.map((_, i) => cli(ip(subnet, i), "cluster", "info").catch(() => "")))).every((info) => /cluster_state:ok/.test(info));

after(async () => {
  await stopAll();
  if (process.env.KEEP_TEST_DIR) console.log(`    kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
});

describe("Redis Cluster: a full restart on new addresses", () => {
  it("re-forms with the shipped start script and keeps its data; the plain start does not", { timeout: 120_000 }, async () => {
    writeFileSync(path.join(dir, "auth.conf"), renderRedisAuthInclude(PASSWORD));
    for (let i = 0; i < 6; i++) {
      mkdirSync(nodeDir(i));
      const conf = renderRedisConf({ port: PORT, clusterPort: BUS, nodeTimeoutMs: 2000, dataDir: nodeDir(i), maxMemory: "32mb", authIncludeFile: path.join(dir, "auth.conf"), announceHostnames: true });
      writeFileSync(path.join(nodeDir(i), "redis.conf"), conf);
    }
    // The script names the node's config and data directory: one copy per node here (one per pod there).
    for (let i = 0; i < 6; i++) writeFileSync(path.join(nodeDir(i), "start.sh"), renderNodeStartScript({ configFile: path.join(nodeDir(i), "redis.conf"), dataDir: nodeDir(i) }));

    writeHosts(91);
    for (let i = 0; i < 6; i++) await start(i, ip(91, i), false);
    await run("redis-cli", ["--cluster", "create", ...names.map((_, i) => `${ip(91, i)}:${PORT}`), "--cluster-replicas", "1", "--cluster-yes"], { env: { REDISCLI_AUTH: PASSWORD } });
    await until("the cluster formed on 127.0.91.x", 30_000, () => clusterOk(91));
    assert.equal(await onOwner(91, "set", "blacklist:ip:203.0.113.9", "listed"), "OK");
    await sleep(1500); // appendfsync everysec
    await stopAll();

    // Every node comes back on a new address, its name now pointing there.
    writeHosts(92);
    for (let i = 0; i < 6; i++) await start(i, ip(92, i), false);
    await sleep(8000);
    assert.equal(await clusterOk(92), false, "control: started plainly, the nodes keep dialling the old addresses");
    await stopAll();

    for (let i = 0; i < 6; i++) await start(i, ip(92, i), true);
    const took = await until("the cluster re-formed on 127.0.92.x", 30_000, () => clusterOk(92));
    console.log(`    re-formed ${(took / 1000).toFixed(1)} s after the six nodes were started on new addresses`);
    assert.equal(await onOwner(92, "get", "blacklist:ip:203.0.113.9"), "listed", "the data survived");
    assert.ok(pids.every(isAlive));
  });
});
