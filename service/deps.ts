/**
 * The reference service's dependencies, built from the stack outputs in one place: the router over
 * the primary and replicas, the Redis Cluster (blacklist, velocity, sessions, login guard), the task
 * producer, health checks and metrics. The service process, the benchmark and the tests all build them
 * here, each with its own options (a test's own database and key prefixes, a benchmark's inline task
 * sender), so the wiring they exercise is the one that runs.
 */
import type { Cluster } from "ioredis";
import { Database } from "@shopfds/runtime/db";
import { Blacklist, type BlacklistOptions } from "@shopfds/runtime/fds";
import { FraudDetector, type FdsRulesOptions } from "@shopfds/runtime/fds";
import { diskCheck, postgresChecks, rabbitMqCheck, redisClusterCheck, redisMemoryCheck } from "@shopfds/runtime/health";
import { HealthMonitor, type HealthMonitorOptions } from "@shopfds/runtime/health";
import { DeadLetters, TaskProducer } from "@shopfds/runtime/jobs";
import { createLogger } from "@shopfds/runtime/observability";
import type { Logger } from "pino";
import { ServiceMetrics } from "@shopfds/runtime/observability";
import type { PostgresOutputs, RedisOutputs, StackOutputs } from "@shopfds/runtime";
import { connectRedisCluster } from "@shopfds/runtime/redis";
import { SessionStore, type SessionStoreOptions } from "@shopfds/runtime/redis";
import type { AppDeps } from "./http/deps";
import type { Account } from "./shop/accounts";
import { LoginGuard, type LoginGuardOptions } from "./shop/login-guard";
import { TASK_ROUTES, type OrderTaskSender } from "./shop/orders";

export interface ServiceDepsOptions {
  /** The ECS `service.name` and the metrics' service label. */
  readonly service: string;
  readonly environment?: "dev" | "staging" | "production";
  /** @default an ECS logger on stdout for `service` */
  readonly log?: Logger;
  /** Another database than the outputs' (a test's own, migrated). */
  readonly postgres?: PostgresOutputs & { readonly lagCheckIntervalMs?: number };
  /** Another Redis Cluster than the outputs' (a test's own). */
  readonly redis?: RedisOutputs;
  /**
   * Prefix of every Redis key the service writes (blacklist, velocity counters, sessions, login guard),
   * so runs sharing one cluster do not meet; none in production (the keys other services read).
   */
  readonly keyPrefix?: string;
  readonly blacklist?: Omit<BlacklistOptions, "cardHashKeys" | "keyPrefix">;
  readonly fds?: Omit<FdsRulesOptions, "velocityKeyPrefix">;
  readonly sessions?: Omit<SessionStoreOptions, "keyPrefix">;
  readonly loginGuard?: Omit<LoginGuardOptions, "keyPrefix">;
  /**
   * Where orders' tasks go: the stack's broker (default), its broker on another queue (`{ queue }`), or a
   * sender of the caller's (a benchmark's inline one, a test's stub); then no producer is connected.
   */
  readonly jobs?: { readonly queue: string } | OrderTaskSender;
  /** Which checks /health runs: every dependency (default), or none (a benchmark measuring the app). */
  readonly health?: { readonly checks: "all" | "none" } & HealthMonitorOptions;
  /** Node.js process metrics. @default true */
  readonly defaultMetrics?: boolean;
  /** Where clients reach the service (links in answers). */
  readonly publicUrl?: string;
  /** The dead-letter queue the admin routes act on. @default "shopfds.dead" */
  readonly deadLetterQueue?: string;
}

export interface ServiceDeps extends AppDeps {
  readonly redis: Cluster;
  /** The connected producer, unless the caller gave its own sender. */
  readonly producer?: TaskProducer;
  /** Stops the health checks and closes every connection this made. */
  close(): Promise<void>;
}

/** Connects everything the reference service needs, as `options` say; `close()` undoes it. */
export async function buildServiceDeps(outputs: StackOutputs, options: ServiceDepsOptions): Promise<ServiceDeps> {
  const prefix = options.keyPrefix ?? "";
  const log = options.log ?? createLogger({ service: options.service, environment: options.environment ?? "dev" });
  const db = await Database.connect(options.postgres ?? outputs.postgres);
  const redis = connectRedisCluster(options.redis ?? outputs.redis);
  const blacklist = new Blacklist(redis, db, { cardHashKeys: outputs.fds.cardHashKeys, ...options.blacklist, ...(prefix ? { keyPrefix: `${prefix}bl:` } : {}) });
  const fds = new FraudDetector(blacklist, redis, outputs.fds.cardHashKeys, { ...options.fds, ...(prefix ? { velocityKeyPrefix: `${prefix}vel:` } : {}) });
  const own = options.jobs === undefined || "queue" in options.jobs;
  // Reconnects by itself after any broker loss; /health reports this very connection.
  // Tasks carry the request's write location, so the worker reads what the request wrote.
  const producer = own
    ? await TaskProducer.connect(outputs.rabbitmq.url, { tls: outputs.rabbitmq.tls, routes: TASK_ROUTES, log: (line) => log.warn(`task producer: ${line}`), writeLocation: () => db.writeLocation() })
    : undefined;
  const jobs: OrderTaskSender = producer ? (options.jobs && "queue" in options.jobs ? producer.forQueue(options.jobs.queue) : producer) : (options.jobs as OrderTaskSender);
  const { checks = "all", ...healthOptions } = options.health ?? {};
  const health = new HealthMonitor(checks === "all" ? [...postgresChecks(db), redisClusterCheck(redis), redisMemoryCheck(redis), ...(producer ? [rabbitMqCheck(producer)] : []), diskCheck("/")] : [], healthOptions);
  if (checks === "all") await health.start();
  const metrics = new ServiceMetrics({ service: options.service, db, blacklist, defaultMetrics: options.defaultMetrics ?? true });
  const sessions = new SessionStore<Account>(redis, { ...options.sessions, ...(prefix ? { keyPrefix: `${prefix}sess:` } : {}) });
  const loginGuard = new LoginGuard(redis, { ...options.loginGuard, ...(prefix ? { keyPrefix: `${prefix}login` } : {}) });
  return {
    db,
    redis,
    fds,
    jobs,
    blacklist,
    sessions,
    loginGuard,
    health,
    metrics,
    log,
    ...(options.publicUrl !== undefined ? { publicUrl: options.publicUrl } : {}),
    ...(producer ? { producer } : {}),
    // A connection per admin request: rare, and nothing to keep alive across a broker restart.
    deadLetters: () => DeadLetters.connect({ url: outputs.rabbitmq.url, ...(outputs.rabbitmq.tls ? { tls: outputs.rabbitmq.tls } : {}), ...(options.deadLetterQueue ? { queue: options.deadLetterQueue } : {}) }),
    async close() {
      health.stop();
      await Promise.allSettled([producer?.close(), db.close()]);
      redis.disconnect();
    },
  };
}
