/**
 * The local stack's RabbitMQ: a second node on its own ports (the machine's own broker on 5672 is
 * never touched), started from the same rendered rabbitmq.conf, plugins and definitions the Docker and
 * Kubernetes backends ship. Its own epmd runs in the foreground on a private port, so both are stopped
 * by PID. Boot takes several seconds (CPU-bound); readiness is an authenticated AMQP connection.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import amqp from "amqplib";
import { RABBIT_VHOST, renderDefinitions, renderEnabledPlugins, renderRabbitConf } from "../../components/rabbitmq/render";

export { RABBIT_VHOST };
import { migrateTaskQueues } from "../../runtime/jobs/queue-migration";
import { verifiedTls } from "../../runtime/tls";
import type { RabbitMqOutputs } from "../../runtime/outputs";
import { pidFromFile, spawnDetached, stopPid, waitFor } from "./process";

export interface LocalRabbitOptions {
  readonly dir: string;
  /** AMQP on `firstPort`, management `+1`, Prometheus `+2`, Erlang distribution `+3`, epmd `+4`. */
  readonly firstPort: number;
  /** Distinguishes this node from others on the machine (the Erlang node name). */
  readonly name: string;
  /**
   * TLS only (as on Kubernetes): AMQPS on `firstPort` with this certificate, no plain AMQP; clients
   * verify it against `caFile` and the name `serverName` (tests/integration/tls-services.test.ts).
   */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string; readonly serverName: string };
}

const HOST = "127.0.0.1";
const USERS = ["shopfds", "flower", "admin"] as const;
type Log = (message: string) => void;

const ports = (o: LocalRabbitOptions) => ({ amqp: o.firstPort, management: o.firstPort + 1, prometheus: o.firstPort + 2, dist: o.firstPort + 3, epmd: o.firstPort + 4 });
const secret = (o: LocalRabbitOptions, user: string) => path.join(o.dir, "secrets", `${user}-password`);
const pidFiles = (o: LocalRabbitOptions) => ({ node: path.join(o.dir, "rabbit.pid"), epmd: path.join(o.dir, "epmd.pid") });

export function rabbitPassword(o: LocalRabbitOptions, user: (typeof USERS)[number]): string {
  return readFileSync(secret(o, user), "utf8").trim();
}

function environment(o: LocalRabbitOptions): NodeJS.ProcessEnv {
  const p = ports(o);
  return {
    PATH: process.env.PATH,
    HOME: path.join(o.dir, "home"),
    RABBITMQ_NODENAME: `${o.name}@localhost`,
    // These two become a plain TCP listener on the command line, over the config file's: TLS-only
    // nodes leave them out (rabbitmq.conf then says listeners.tcp = none).
    ...(o.tls ? {} : { RABBITMQ_NODE_IP_ADDRESS: HOST, RABBITMQ_NODE_PORT: String(p.amqp) }),
    RABBITMQ_DIST_PORT: String(p.dist),
    RABBITMQ_CONFIG_FILE: path.join(o.dir, "rabbitmq.conf"),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(o.dir, "enabled_plugins"),
    RABBITMQ_MNESIA_BASE: path.join(o.dir, "mnesia"),
    RABBITMQ_LOG_BASE: path.join(o.dir, "log"),
    // A node that dies at boot writes its crash dump beside its logs, not into the caller's directory.
    ERL_CRASH_DUMP: path.join(o.dir, "log", "erl_crash.dump"),
    RABBITMQ_PID_FILE: pidFiles(o).node,
    ERL_EPMD_PORT: String(p.epmd),
    ERL_EPMD_ADDRESS: HOST,
  };
}

function ensureConfig(o: LocalRabbitOptions): void {
  for (const d of ["secrets", "home", "mnesia", "log"]) mkdirSync(path.join(o.dir, d), { recursive: true, mode: 0o700 });
  for (const user of USERS) if (!existsSync(secret(o, user))) writeFileSync(secret(o, user), randomBytes(24).toString("hex"), { mode: 0o600 });
  const p = ports(o);
  const definitions = path.join(o.dir, "secrets", "definitions.json");
  writeFileSync(definitions, renderDefinitions({ vhost: RABBIT_VHOST, users: [
    { name: "shopfds", password: rabbitPassword(o, "shopfds"), tags: [] },
    { name: "flower", password: rabbitPassword(o, "flower"), tags: ["monitoring"] },
    { name: "admin", password: rabbitPassword(o, "admin"), tags: ["administrator"] },
  ] }), { mode: 0o600 });
  writeFileSync(path.join(o.dir, "rabbitmq.conf"), renderRabbitConf({ amqpPort: p.amqp, managementPort: p.management, prometheusPort: p.prometheus, bindAddress: HOST, definitionsFile: definitions, tls: o.tls }));
  writeFileSync(path.join(o.dir, "enabled_plugins"), renderEnabledPlugins());
  // Erlang needs a cookie of its own, readable only by its owner.
  const cookie = path.join(o.dir, "home", ".erlang.cookie");
  if (!existsSync(cookie)) writeFileSync(cookie, randomBytes(20).toString("hex").toUpperCase(), { mode: 0o400 });
}

export function rabbitOutputs(o: LocalRabbitOptions): RabbitMqOutputs {
  const p = ports(o);
  return {
    url: `${o.tls ? "amqps" : "amqp"}://shopfds:${rabbitPassword(o, "shopfds")}@${HOST}:${p.amqp}/${RABBIT_VHOST}`,
    managementUrl: `http://${HOST}:${p.management}/`,
    ...(o.tls ? { tls: { caFile: o.tls.caFile, serverName: o.tls.serverName } } : {}),
  };
}

/** Starts epmd and the node (no-op for what already runs) and waits for an authenticated connection. */
export async function startRabbit(o: LocalRabbitOptions, log: Log = () => {}): Promise<RabbitMqOutputs> {
  ensureConfig(o);
  const env = environment(o);
  const p = ports(o);
  const files = pidFiles(o);
  if (!pidFromFile(files.epmd)) spawnDetached("epmd", ["-address", HOST, "-port", String(p.epmd)], { env, logFile: path.join(o.dir, "log", "epmd.log"), pidFile: files.epmd });
  const starting = !pidFromFile(files.node);
  if (starting) {
    log(`rabbitmq on ${HOST}:${p.amqp} (management ${p.management}, prometheus ${p.prometheus})`);
    // The script execs the Erlang VM, so this PID is the node's; RabbitMQ rewrites the file itself too.
    spawnDetached("/usr/lib/rabbitmq/bin/rabbitmq-server", [], { env, logFile: path.join(o.dir, "log", "server.out"), pidFile: files.node });
  }
  const outputs = rabbitOutputs(o);
  await waitFor(`RabbitMQ on ${HOST}:${p.amqp}`, 60_000, async () => {
    if (!pidFromFile(files.node)) throw new Error(`the node exited; see ${path.join(o.dir, "log")}`);
    const c = await amqp.connect(outputs.url, { timeout: 1000, ...verifiedTls("rabbitmq.tls", outputs.tls) });
    await c.close();
    return true;
  });
  // A stack kept from an earlier version holds its task queues with their old arguments (RabbitMQ 3.10's
  // boot import of the definitions leaves an existing queue as it is, as observed): migrate them before
  // any worker declares them (docs/runtime.md, "Upgrading a broker"). Only on a fresh boot, no apps yet.
  if (starting) {
    const c = await amqp.connect(outputs.url, { timeout: 5000, ...verifiedTls("rabbitmq.tls", outputs.tls) });
    try {
      await migrateTaskQueues(c, (line) => (/nothing to do|not declared yet/.test(line) ? undefined : log(line)));
    } catch (error) {
      log(`the task queues were not migrated to this version's arguments: ${(error as Error).message}`);
    } finally {
      await c.close();
    }
  }
  return outputs;
}

export async function stopRabbit(o: LocalRabbitOptions): Promise<string[]> {
  const stopped: string[] = [];
  const files = pidFiles(o);
  const node = pidFromFile(files.node);
  if (node) {
    await stopPid(node, "SIGTERM", 30_000);
    stopped.push("node");
  }
  const epmd = pidFromFile(files.epmd);
  if (epmd) {
    await stopPid(epmd, "SIGTERM");
    stopped.push("epmd");
  }
  return stopped;
}

/** Runs rabbitmqctl against this node (0.7–1.5 s a call: the CLI boots an Erlang VM). */
export function rabbitCtl(o: LocalRabbitOptions, ...args: string[]): string {
  return execFileSync("/usr/lib/rabbitmq/bin/rabbitmqctl", ["-n", `${o.name}@localhost`, ...args], { env: environment(o), encoding: "utf8", timeout: 30_000 });
}

export function rabbitStatus(o: LocalRabbitOptions): { name: string; port: number; pid?: number }[] {
  const p = ports(o);
  const files = pidFiles(o);
  return [
    { name: "node", port: p.amqp, pid: pidFromFile(files.node) },
    { name: "epmd", port: p.epmd, pid: pidFromFile(files.epmd) },
  ];
}
