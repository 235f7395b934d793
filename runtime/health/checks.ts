/**
 * The standard ShopFDS health checks: the PostgreSQL primary (critical), each replica with its lag
 * (not critical: reads fall back to the primary), the Redis Cluster state, RabbitMQ, and disk use.
 */
import { statfs } from "node:fs/promises";
import type { Cluster } from "ioredis";
import type { Database } from "../db/router";
import type { HealthCheck } from "./health";
import { TASK_QUEUE } from "../jobs/topology";

/** A refused new connection counts for this long (the pool may not try again while it has enough). */
const CONNECT_FAILURE_WINDOW_MS = 60_000;

export function postgresChecks(db: Database, maxLagMs = 10_000): HealthCheck[] {
  const replicas = db.stats().replicas.map(
    (r, i): HealthCheck => ({
      name: `postgres:replica-${i + 1}:lag`,
      componentType: "datastore",
      critical: false,
      run: async () => {
        const now = db.stats().replicas[i]!;
        if (!now.healthy) return { status: "fail", output: `${now.name} is out of rotation (unreachable); reads go to the primary` };
        if (now.lagMs === undefined) return { status: "warn", output: `${now.name}: lag not measured yet` };
        return { status: now.lagMs > maxLagMs ? "warn" : "pass", observedValue: now.lagMs, observedUnit: "ms", ...(now.lagMs > maxLagMs ? { output: `${now.name} is ${now.lagMs} ms behind (limit ${maxLagMs} ms)` } : {}) };
      },
    }),
  );
  return [
    {
      name: "postgres:primary",
      componentType: "datastore",
      run: async () => {
        const started = performance.now();
        await db.query("SELECT 1", [], { target: "primary" });
        const observed = { observedValue: Math.round((performance.now() - started) * 10) / 10, observedUnit: "ms" };
        // SELECT 1 runs on a connection the pool holds: it passes while the pool cannot open one more.
        const refused = db.stats().primaryConnectFailure;
        if (refused && Date.now() - refused.at < CONNECT_FAILURE_WINDOW_MS) return { status: "fail", ...observed, output: `the primary refused this pool's last new connection ${Math.round((Date.now() - refused.at) / 1000)} s ago (${refused.code ? `${refused.code}: ` : ""}${refused.message}): work needing one more connection fails` };
        return observed;
      },
    },
    ...replicas,
  ];
}

export function redisClusterCheck(redis: Cluster): HealthCheck {
  return {
    name: "redis:cluster",
    componentType: "datastore",
    run: async () => {
      const info = String(await redis.call("CLUSTER", "INFO"));
      const state = /cluster_state:(\w+)/.exec(info)?.[1] ?? "unknown";
      return { status: state === "ok" ? "pass" : "fail", observedValue: state, ...(state === "ok" ? {} : { output: `cluster_state:${state}` }) };
    },
  };
}

/**
 * Memory of the cluster's masters against their `maxmemory`: warn from `warnRatio` (0.8), fail at
 * `failRatio` (0.95). The stacks run `noeviction`, so a master at its limit refuses every write — a
 * blacklist change (rolled back: nothing changed), a new session (logins answer 503) — while reads go
 * on. Not critical: every instance shares the cluster, so taking this one out of rotation helps nobody.
 * Reports the fullest master (`observedValue`: its used/max ratio).
 */
export function redisMemoryCheck(redis: Cluster, options: { warnRatio?: number; failRatio?: number } = {}): HealthCheck {
  const warnRatio = options.warnRatio ?? 0.8;
  const failRatio = options.failRatio ?? 0.95;
  return {
    name: "redis:memory",
    componentType: "datastore",
    critical: false,
    run: async () => {
      let fullest = { node: "", used: 0, max: 0, ratio: 0 };
      for (const master of redis.nodes("master")) {
        const info = String(await master.info("memory"));
        const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
        const max = Number(/maxmemory:(\d+)/.exec(info)?.[1] ?? 0);
        const ratio = max > 0 ? used / max : 0;
        if (ratio >= fullest.ratio) fullest = { node: `${master.options.host}:${master.options.port}`, used, max, ratio };
      }
      const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
      const observed = { observedValue: Math.round(fullest.ratio * 1000) / 1000, observedUnit: "used/maxmemory" };
      if (fullest.max === 0) return { observedValue: 0, observedUnit: "used/maxmemory (no limit)" };
      if (fullest.ratio >= failRatio) return { status: "fail", ...observed, output: `master ${fullest.node} is at maxmemory (${mib(fullest.used)} of ${mib(fullest.max)}): writes are refused (noeviction): blacklist changes and logins fail until memory is freed or raised` };
      if (fullest.ratio >= warnRatio) return { status: "warn", ...observed, output: `master ${fullest.node} uses ${Math.round(fullest.ratio * 100)} % of maxmemory (${mib(fullest.used)} of ${mib(fullest.max)})` };
      return observed;
    },
  };
}

/** What the RabbitMQ check reads: the connection this process really uses (TaskProducer and Worker fit). */
export interface BrokerConnectionState {
  readonly connected: boolean;
  /** Why and since when the broker blocks the connection (a resource alarm), if it does. */
  readonly blocked?: { readonly reason: string; readonly since: number };
  /** Sends kept for the broker (away or blocked), to go out when it takes them again. */
  readonly pendingDeferred?: number;
  /** Messages waiting in `queue`, read over that same connection. */
  queueDepth?(queue: string): Promise<number>;
}

/**
 * The broker as this process uses it: fails while the connection it publishes (or consumes) on is down
 * and reconnecting, even if another connection could reach the broker; warns while the broker blocks
 * it (a memory or disk alarm: publishes wait, and the producer keeps what it could not send); otherwise
 * reports the task queue's depth, read over that same connection.
 */
export function rabbitMqCheck(connection: BrokerConnectionState, queue = TASK_QUEUE, name = "rabbitmq:queue"): HealthCheck {
  return {
    name,
    componentType: "component",
    run: async () => {
      if (!connection.connected) return { status: "fail", output: "the broker connection this process uses is down (reconnecting with back-off)" };
      const blocked = connection.blocked;
      if (blocked) {
        // Not read over the connection: a blocked one is not read by the broker at all, so the answer would wait for the alarm.
        const kept = connection.pendingDeferred ?? 0;
        return { status: "warn", observedValue: "blocked", output: `the broker has blocked this connection for ${Math.round((Date.now() - blocked.since) / 1000)} s (${blocked.reason}): publishes wait for the alarm to clear; ${kept} task(s) kept to send then` };
      }
      if (!connection.queueDepth) return { observedValue: "connected" };
      return { observedValue: await connection.queueDepth(queue), observedUnit: "messages waiting" };
    },
  };
}

/** Disk use of the file system holding `path`: warn from 80 %, fail from 90 %. */
export function diskCheck(path = "/"): HealthCheck {
  return {
    name: "disk:utilization",
    componentType: "system",
    run: async () => {
      const s = await statfs(path);
      const used = Math.round((1 - s.bavail / s.blocks) * 1000) / 10;
      return { status: used >= 90 ? "fail" : used >= 80 ? "warn" : "pass", observedValue: used, observedUnit: "percent" };
    },
  };
}
