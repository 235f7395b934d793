/**
 * The local stack as a whole: profiles (dev for `make dev`, test for `make test`, on separate ports
 * and directories so they never collide), start/stop/status/clean, and the outputs file in the shape of
 * the stack-outputs contract.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { parseStackConfig, PROJECT, type StackConfig } from "../../components/config";
import { parseStackOutputs, StackOutputs } from "../../runtime/outputs";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { FdsOutputs } from "../../runtime/outputs";
import { LocalPostgresOptions, MemberStatus, postgresStatus, startPostgres, stopPostgres } from "./postgres";
import { LocalRabbitOptions, rabbitStatus, startRabbit, stopRabbit } from "./rabbitmq";
import { LocalRedisOptions, readRedisPassword, redisNodePort, redisStatus, startRedis, stopRedis } from "./redis";
import { REDIS_NODE_COUNT } from "../../components/redis/render";
import { LocalSmtpOptions, smtpStatus, startSmtpSink, stopSmtpSink } from "./smtp";
import { LocalMonitoringOptions, monitoringStatus, otlpEndpoint, serviceTargetsFile, startMonitoring, stopMonitoring } from "./monitoring";
import { appsStatus, LocalAppsOptions, stopApps } from "./apps";

export interface LocalStackProfile {
  readonly name: string;
  /** Everything the stack keeps: data, config, secrets, logs, outputs.json. */
  readonly dir: string;
  /**
   * The stack's ports are offsets from this base: Redis nodes base + 1…6 (cluster bus + 11…16),
   * SMTP sink base + 25, PostgreSQL primary base + 32 and replica base + 33, RabbitMQ base + 72…76,
   * the service base + 80 and the worker's metrics + 81 (`make dev` only), Prometheus base + 90,
   * node-exporter + 91, Alertmanager + 93, the Slack webhook sink + 94.
   */
  readonly portBase: number;
}

export const ROOT = path.resolve(__dirname, "../..");

/**
 * dev: ports 154xx, `.local-stack/dev`; test: ports 254xx, `.local-stack/test`. Override with env.
 * Every fixed port of the stacks and tests sits below 32768, Linux's ephemeral range: a server asked to
 * listen on a port that an outgoing connection happens to use as its source port fails to start.
 */
export function profile(name: string, env: NodeJS.ProcessEnv = process.env): LocalStackProfile {
  const defaults: Record<string, number> = { dev: 15400, test: 25400 };
  if (!(name in defaults)) throw new Error(`unknown local stack profile "${name}" (use dev or test)`);
  const base = env.SHOPFDS_LOCAL_PORT_BASE ? Number(env.SHOPFDS_LOCAL_PORT_BASE) : defaults[name];
  if (!Number.isInteger(base) || base < 1024 || base > 65000) throw new Error(`SHOPFDS_LOCAL_PORT_BASE must be an integer from 1024 to 65000 (got ${JSON.stringify(env.SHOPFDS_LOCAL_PORT_BASE)})`);
  return { name, dir: path.resolve(env.SHOPFDS_LOCAL_STACK_DIR ?? path.join(ROOT, ".local-stack", name)), portBase: base };
}

/**
 * The dev stack's settings (Pulumi.dev.yaml), validated by the same parseStackConfig the Pulumi program
 * uses: the local stack runs what `pulumi up --stack dev` would (replica count, database and user names,
 * Redis memory and node timeout), only on loopback ports.
 */
export function devStackSettings(file = path.join(ROOT, "Pulumi.dev.yaml")): StackConfig {
  const config = (parse(readFileSync(file, "utf8")) as { config?: Record<string, unknown> }).config ?? {};
  const prefix = `${PROJECT}:`;
  return parseStackConfig(Object.fromEntries(Object.entries(config).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v])));
}

export function postgresOptions(p: LocalStackProfile, dev = devStackSettings()): LocalPostgresOptions {
  return { dir: path.join(p.dir, "postgres"), primaryPort: p.portBase + 32, replicas: dev.postgres.replicas, database: dev.postgres.database, user: dev.postgres.user };
}

export function redisOptions(p: LocalStackProfile, dev = devStackSettings()): LocalRedisOptions {
  return { dir: path.join(p.dir, "redis"), firstPort: p.portBase + 1, firstBusPort: p.portBase + 11, nodeTimeoutMs: dev.redis.nodeTimeoutMs, maxMemory: dev.redis.maxMemory };
}

export function rabbitOptions(p: LocalStackProfile): LocalRabbitOptions {
  return { dir: path.join(p.dir, "rabbitmq"), firstPort: p.portBase + 72, name: `shopfds-${p.name}-${p.portBase}` };
}

export function smtpOptions(p: LocalStackProfile): LocalSmtpOptions {
  return { dir: path.join(p.dir, "smtp"), port: p.portBase + 25 };
}

export function monitoringOptions(p: LocalStackProfile): LocalMonitoringOptions {
  return {
    dir: path.join(p.dir, "monitoring"),
    prometheusPort: p.portBase + 90,
    nodeExporterPort: p.portBase + 91,
    alertmanagerPort: p.portBase + 93,
    webhookPort: p.portBase + 94,
    traceSinkPort: p.portBase + 95,
    smtpPort: smtpOptions(p).port,
    redis: { exporterPort: p.portBase + 92, nodes: Array.from({ length: REDIS_NODE_COUNT }, (_, i) => ({ host: "127.0.0.1", port: redisNodePort(redisOptions(p), i) })), password: () => readRedisPassword(redisOptions(p)) },
    jobs: [{ name: "rabbitmq", targets: [`127.0.0.1:${rabbitOptions(p).firstPort + 2}`] }],
  };
}

export function appsOptions(p: LocalStackProfile): LocalAppsOptions {
  return { dir: path.join(p.dir, "apps"), outputsFile: outputsFile(p), servicePort: p.portBase + 80, workerMetricsPort: p.portBase + 81, targetsFile: serviceTargetsFile(monitoringOptions(p)), otlpEndpoint: otlpEndpoint(monitoringOptions(p)) };
}

/** The FDS card-hash key (version 1), generated once per stack like the passwords. */
function fdsOutputs(p: LocalStackProfile): FdsOutputs {
  const file = path.join(p.dir, "fds-card-key-1");
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString("hex"), { mode: 0o600 });
  return { cardHashKeys: [{ version: 1, key: readFileSync(file, "utf8").trim() }] };
}

export const outputsFile = (p: LocalStackProfile) => path.join(p.dir, "outputs.json");

export async function startStack(p: LocalStackProfile, log: (m: string) => void = () => {}): Promise<{ outputs: StackOutputs; timings: Record<string, number> }> {
  mkdirSync(p.dir, { recursive: true });
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, start: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const result = await start();
    timings[name] = performance.now() - t;
    return result;
  };
  // The servers are independent: start them side by side.
  const [postgres, redis, rabbitmq] = await Promise.all([
    timed("postgres", () => startPostgres(postgresOptions(p), log)),
    timed("redis", () => startRedis(redisOptions(p), log)),
    timed("rabbitmq", () => startRabbit(rabbitOptions(p), log)),
  ]);
  // After the servers: the sink is a Node process, and starting it beside RabbitMQ's CPU-bound boot
  // only slows both.
  const [smtp, monitoring] = await Promise.all([timed("smtp", () => startSmtpSink(smtpOptions(p), log)), timed("monitoring", () => startMonitoring(monitoringOptions(p), log))]);
  // Validate what we write against the contract the services will read it with.
  const outputs = parseStackOutputs({ postgres, redis, fds: fdsOutputs(p), rabbitmq, smtp, monitoring }, "local stack outputs");
  writeFileSync(outputsFile(p), JSON.stringify(outputs, null, 2) + "\n", { mode: 0o600 });
  return { outputs, timings };
}

export async function stopStack(p: LocalStackProfile): Promise<string[]> {
  if (!existsSync(p.dir)) return [];
  // The processes that use the servers go first.
  const apps = await stopApps(appsOptions(p));
  const [pg, redis, rabbit, smtp, monitoring] = await Promise.all([
    stopPostgres(postgresOptions(p)),
    stopRedis(redisOptions(p)),
    stopRabbit(rabbitOptions(p)),
    stopSmtpSink(smtpOptions(p)),
    stopMonitoring(monitoringOptions(p)),
  ]);
  return [...apps, ...pg.map((n) => `postgres ${n}`), ...redis.map((n) => `redis ${n}`), ...rabbit.map((n) => `rabbitmq ${n}`), ...smtp.map((n) => `smtp ${n}`), ...monitoring.map((n) => `monitoring ${n}`)];
}

/** Stops everything and removes the stack's directory. */
export async function cleanStack(p: LocalStackProfile): Promise<string[]> {
  const stopped = await stopStack(p);
  rmSync(p.dir, { recursive: true, force: true });
  return stopped;
}

export function stackStatus(p: LocalStackProfile): {
  postgres: MemberStatus[];
  redis: ReturnType<typeof redisStatus>;
  rabbitmq: ReturnType<typeof rabbitStatus>;
  smtp: ReturnType<typeof smtpStatus>;
  monitoring: ReturnType<typeof monitoringStatus>;
  apps: ReturnType<typeof appsStatus>;
} {
  const started = existsSync(p.dir);
  return {
    postgres: started ? postgresStatus(postgresOptions(p)) : [],
    redis: started && existsSync(redisOptions(p).dir) ? redisStatus(redisOptions(p)) : [],
    rabbitmq: started && existsSync(rabbitOptions(p).dir) ? rabbitStatus(rabbitOptions(p)) : [],
    smtp: started && existsSync(smtpOptions(p).dir) ? smtpStatus(smtpOptions(p)) : [],
    monitoring: started && existsSync(monitoringOptions(p).dir) ? monitoringStatus(monitoringOptions(p)) : [],
    apps: started && existsSync(appsOptions(p).dir) ? appsStatus(appsOptions(p)) : [],
  };
}
