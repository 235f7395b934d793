/**
 * The local stack's Redis Cluster: six real redis-server processes on loopback (three masters, three
 * replicas), configured by the same renderer the Docker and Kubernetes backends ship, and formed by the
 * same rendered creation script.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import * as path from "node:path";
import { REDIS_NODE_COUNT, type RedisTlsFiles, renderClusterCreateScript, renderRedisAuthInclude, renderRedisConf } from "../../components/redis/render";
import { connect as tlsConnect } from "node:tls";
import type { RedisOutputs } from "../../runtime/outputs";
import { pidFromFile, run, stopPid, waitFor } from "./process";

export interface LocalRedisOptions {
  /** Directory holding every node's data, config, log and the password. */
  readonly dir: string;
  /** Node `i` (0–5) listens on `firstPort + i`. */
  readonly firstPort: number;
  /** Node `i`'s cluster bus listens on `firstBusPort + i` (set explicitly, see MACHINE-NOTES). */
  readonly firstBusPort: number;
  /** The dev stack's `redis.nodeTimeoutMs` (stack.ts reads it from Pulumi.dev.yaml). */
  readonly nodeTimeoutMs: number;
  /** The dev stack's `redis.maxMemory`. */
  readonly maxMemory: string;
  /**
   * TLS only (as on Kubernetes): every node serves this certificate; clients verify it against `caFile`
   * and the name `serverName` (tests/integration/tls-services.test.ts).
   */
  readonly tls?: RedisTlsFiles & { readonly serverName: string };
}

const HOST = "127.0.0.1";
type Log = (message: string) => void;

const nodeDir = (o: LocalRedisOptions, i: number) => path.join(o.dir, `node-${i}`);
const pidFile = (o: LocalRedisOptions, i: number) => path.join(nodeDir(o, i), "redis.pid");
const passwordFile = (o: LocalRedisOptions) => path.join(o.dir, "secrets", "redis-password");
const authInclude = (o: LocalRedisOptions) => path.join(o.dir, "secrets", "redis-auth.conf");
export const redisNodePort = (o: LocalRedisOptions, i: number) => o.firstPort + i;

export function readRedisPassword(o: LocalRedisOptions): string {
  return readFileSync(passwordFile(o), "utf8").trim();
}

function ensureConfig(o: LocalRedisOptions): void {
  mkdirSync(path.join(o.dir, "secrets"), { recursive: true, mode: 0o700 });
  if (!existsSync(passwordFile(o))) writeFileSync(passwordFile(o), randomBytes(24).toString("hex"), { mode: 0o600 });
  writeFileSync(authInclude(o), renderRedisAuthInclude(readRedisPassword(o)), { mode: 0o600 });
  for (let i = 0; i < REDIS_NODE_COUNT; i++) {
    mkdirSync(nodeDir(o, i), { recursive: true });
    writeFileSync(
      path.join(nodeDir(o, i), "redis.conf"),
      renderRedisConf({
        port: redisNodePort(o, i),
        clusterPort: o.firstBusPort + i,
        nodeTimeoutMs: o.nodeTimeoutMs,
        dataDir: nodeDir(o, i),
        maxMemory: o.maxMemory,
        authIncludeFile: authInclude(o),
        announceHostnames: false,
        tls: o.tls,
      }),
    );
  }
}

/** redis-cli's TLS flags (it checks the chain, not the name). */
const cliTls = (o: LocalRedisOptions): string[] => (o.tls ? ["--tls", "--cacert", o.tls.caFile] : []);

/** A node's PID, if its pid file names a live process. */
export function redisNodePid(o: LocalRedisOptions, i: number): number | undefined {
  return pidFromFile(pidFile(o, i));
}

/** Starts node `i` (no-op if it runs) and waits until it answers. */
export async function startRedisNode(o: LocalRedisOptions, i: number): Promise<number> {
  const running = redisNodePid(o, i);
  if (running) return running;
  const dir = nodeDir(o, i);
  // Loopback only, daemonized with a pid file: the local stack's additions to the shared redis.conf.
  await run("redis-server", [path.join(dir, "redis.conf"), "--bind", HOST, "--daemonize", "yes", "--pidfile", pidFile(o, i), "--logfile", path.join(dir, "redis.log")], { cwd: dir });
  // Generous: the whole stack starts at once on 2 cores, and RabbitMQ's boot is CPU-bound.
  return waitFor(`redis node ${i} on ${HOST}:${redisNodePort(o, i)} (log: ${path.join(dir, "redis.log")})`, 30_000, async () => {
    const pid = redisNodePid(o, i);
    if (!pid) return undefined;
    return (await pingRedis(o, redisNodePort(o, i), readRedisPassword(o))) ? pid : undefined;
  });
}

/** AUTH + PING over a plain socket: cheaper than spawning redis-cli at every poll. */
function pingRedis(o: LocalRedisOptions, port: number, password: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = o.tls ? tlsConnect({ host: HOST, port, ca: readFileSync(o.tls.caFile), servername: o.tls.serverName }) : createConnection({ host: HOST, port });
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on("error", () => done(false));
    socket.on(o.tls ? "secureConnect" : "connect", () => socket.write(`AUTH ${password}\r\nPING\r\n`));
    socket.on("data", (d) => {
      reply += d.toString();
      if (reply.includes("+PONG")) done(true);
      else if (reply.includes("-")) done(false);
    });
  });
}

/** Stops node `i` by its PID: SIGTERM (Redis flushes its AOF and exits), or SIGKILL for fault tests. */
export async function stopRedisNode(o: LocalRedisOptions, i: number, signal: NodeJS.Signals = "SIGTERM"): Promise<boolean> {
  const pid = redisNodePid(o, i);
  if (!pid) return false;
  await stopPid(pid, signal);
  return true;
}

/** `cluster info` of node `i` as a map. */
export async function clusterInfo(o: LocalRedisOptions, i: number): Promise<Record<string, string>> {
  const out = await run("redis-cli", [...cliTls(o), "-h", HOST, "-p", String(redisNodePort(o, i)), "cluster", "info"], { env: { REDISCLI_AUTH: readRedisPassword(o) } });
  return Object.fromEntries(
    out
      .split(/\r?\n/)
      .filter((l) => l.includes(":"))
      .map((l) => l.split(":", 2) as [string, string]),
  );
}

/** Starts the six nodes and forms the cluster with the rendered creation script (idempotent). */
export async function startRedis(o: LocalRedisOptions, log: Log = () => {}): Promise<RedisOutputs> {
  ensureConfig(o);
  log(`redis cluster nodes on ${HOST}:${redisNodePort(o, 0)}-${redisNodePort(o, REDIS_NODE_COUNT - 1)}`);
  await Promise.all(Array.from({ length: REDIS_NODE_COUNT }, (_, i) => startRedisNode(o, i)));
  const script = path.join(o.dir, "cluster-create.sh");
  writeFileSync(
    script,
    renderClusterCreateScript({
      nodes: Array.from({ length: REDIS_NODE_COUNT }, (_, i) => ({ host: HOST, port: redisNodePort(o, i) })),
      replicasPerMaster: 1,
      passwordFile: passwordFile(o),
      waitSeconds: 30,
      tlsCaFile: o.tls?.caFile,
    }),
    { mode: 0o755 },
  );
  // redis-cli colours its report even into a pipe; the last line is the script's own summary.
  log((await run("sh", [script])).replace(/\x1b\[[0-9;]*m/g, "").trim().split("\n").pop() ?? "");
  // Ready means replicated: every replica's link to its master is up, so a write confirmed with
  // `WAIT 1` right after start does not time out while a replica is still doing its first sync.
  await waitFor("every Redis replica in sync with its master", 30_000, async () => {
    for (let i = 0; i < REDIS_NODE_COUNT; i++) {
      const info = await run("redis-cli", [...cliTls(o), "-h", HOST, "-p", String(redisNodePort(o, i)), "info", "replication"], { env: { REDISCLI_AUTH: readRedisPassword(o) } });
      if (/^role:slave\r?$/m.test(info) && !/^master_link_status:up\r?$/m.test(info)) return undefined;
    }
    return true;
  });
  return redisOutputs(o);
}

export function redisOutputs(o: LocalRedisOptions): RedisOutputs {
  return {
    nodes: Array.from({ length: REDIS_NODE_COUNT }, (_, i) => ({ host: HOST, port: redisNodePort(o, i) })),
    password: readRedisPassword(o),
    ...(o.tls ? { tls: { caFile: o.tls.caFile, serverName: o.tls.serverName } } : {}),
  };
}

export async function stopRedis(o: LocalRedisOptions): Promise<string[]> {
  const stopped: string[] = [];
  await Promise.all(
    Array.from({ length: REDIS_NODE_COUNT }, async (_, i) => {
      if (await stopRedisNode(o, i)) stopped.push(`node-${i}`);
    }),
  );
  return stopped.sort();
}

export function redisStatus(o: LocalRedisOptions): { name: string; port: number; pid?: number }[] {
  return Array.from({ length: REDIS_NODE_COUNT }, (_, i) => ({ name: `node-${i}`, port: redisNodePort(o, i), pid: redisNodePid(o, i) }));
}
