/**
 * The local stack's RabbitMQ: a second node on its own ports (the machine's own broker on 5672 is
 * never touched), started from the same rendered rabbitmq.conf, plugins and definitions the Docker and
 * Kubernetes backends ship. Its own epmd runs in the foreground on a private port, so both are stopped
 * by PID. Boot takes several seconds (CPU-bound); readiness is an authenticated AMQP connection.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import amqp from "amqplib";
import { renderDefinitions, renderEnabledPlugins, renderRabbitConf } from "../../components/rabbitmq/render";
import type { RabbitMqOutputs } from "../../runtime/outputs";
import { isAlive, stopPid, waitFor } from "./process";

export interface LocalRabbitOptions {
  readonly dir: string;
  /** AMQP on `firstPort`, management `+1`, Prometheus `+2`, Erlang distribution `+3`, epmd `+4`. */
  readonly firstPort: number;
  /** Distinguishes this node from others on the machine (the Erlang node name). */
  readonly name: string;
}

export const RABBIT_VHOST = "shopfds";
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
    RABBITMQ_NODE_IP_ADDRESS: HOST,
    RABBITMQ_NODE_PORT: String(p.amqp),
    RABBITMQ_DIST_PORT: String(p.dist),
    RABBITMQ_CONFIG_FILE: path.join(o.dir, "rabbitmq.conf"),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(o.dir, "enabled_plugins"),
    RABBITMQ_MNESIA_BASE: path.join(o.dir, "mnesia"),
    RABBITMQ_LOG_BASE: path.join(o.dir, "log"),
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
  writeFileSync(path.join(o.dir, "rabbitmq.conf"), renderRabbitConf({ amqpPort: p.amqp, managementPort: p.management, prometheusPort: p.prometheus, bindAddress: HOST, definitionsFile: definitions }));
  writeFileSync(path.join(o.dir, "enabled_plugins"), renderEnabledPlugins());
  // Erlang needs a cookie of its own, readable only by its owner.
  const cookie = path.join(o.dir, "home", ".erlang.cookie");
  if (!existsSync(cookie)) writeFileSync(cookie, randomBytes(20).toString("hex").toUpperCase(), { mode: 0o400 });
}

function readPid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

function spawnDetached(command: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): number {
  const out = openSync(logFile, "a");
  try {
    const child = spawn(command, args, { env, detached: true, stdio: ["ignore", out, out] });
    child.unref();
    if (!child.pid) throw new Error(`could not start ${command}`);
    return child.pid;
  } finally {
    closeSync(out);
  }
}

export function rabbitOutputs(o: LocalRabbitOptions): RabbitMqOutputs {
  const p = ports(o);
  return {
    url: `amqp://shopfds:${rabbitPassword(o, "shopfds")}@${HOST}:${p.amqp}/${RABBIT_VHOST}`,
    managementUrl: `http://${HOST}:${p.management}/`,
  };
}

/** Starts epmd and the node (no-op for what already runs) and waits for an authenticated connection. */
export async function startRabbit(o: LocalRabbitOptions, log: Log = () => {}): Promise<RabbitMqOutputs> {
  ensureConfig(o);
  const env = environment(o);
  const p = ports(o);
  const files = pidFiles(o);
  if (!readPid(files.epmd)) {
    const pid = spawnDetached("epmd", ["-address", HOST, "-port", String(p.epmd)], env, path.join(o.dir, "log", "epmd.log"));
    writeFileSync(files.epmd, `${pid}\n`);
  }
  if (!readPid(files.node)) {
    log(`rabbitmq on ${HOST}:${p.amqp} (management ${p.management}, prometheus ${p.prometheus})`);
    const pid = spawnDetached("/usr/lib/rabbitmq/bin/rabbitmq-server", [], env, path.join(o.dir, "log", "server.out"));
    // The script execs the Erlang VM, so this PID is the node's; RabbitMQ rewrites the file itself too.
    writeFileSync(files.node, `${pid}\n`);
  }
  const outputs = rabbitOutputs(o);
  await waitFor(`RabbitMQ on ${HOST}:${p.amqp}`, 60_000, async () => {
    if (!readPid(files.node)) throw new Error(`the node exited; see ${path.join(o.dir, "log")}`);
    const c = await amqp.connect(outputs.url, { timeout: 1000 });
    await c.close();
    return true;
  });
  return outputs;
}

export async function stopRabbit(o: LocalRabbitOptions): Promise<string[]> {
  const stopped: string[] = [];
  const files = pidFiles(o);
  const node = readPid(files.node);
  if (node) {
    await stopPid(node, "SIGTERM", 30_000);
    stopped.push("node");
  }
  const epmd = readPid(files.epmd);
  if (epmd) {
    await stopPid(epmd, "SIGTERM");
    stopped.push("epmd");
  }
  return stopped;
}

export function rabbitStatus(o: LocalRabbitOptions): { name: string; port: number; pid?: number }[] {
  const p = ports(o);
  const files = pidFiles(o);
  return [
    { name: "node", port: p.amqp, pid: readPid(files.node) },
    { name: "epmd", port: p.epmd, pid: readPid(files.epmd) },
  ];
}
