/**
 * The standard ShopFDS health checks: the PostgreSQL primary (critical), each replica with its lag
 * (not critical: reads fall back to the primary), the Redis Cluster state, RabbitMQ, and disk use.
 */
import { statfs } from "node:fs/promises";
import amqp, { type ChannelModel } from "amqplib";
import type { Cluster } from "ioredis";
import type { Database } from "../db/router";
import type { HealthCheck } from "./health";

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
        return { observedValue: Math.round((performance.now() - started) * 10) / 10, observedUnit: "ms" };
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

/** Keeps one connection to the broker and checks that the task queue is there. */
export function rabbitMqCheck(url: string, queue = "celery"): HealthCheck & { close(): Promise<void> } {
  let connection: Promise<ChannelModel> | undefined;
  const connect = () => {
    connection ??= amqp.connect(url, { timeout: 2000 }).then((c) => {
      c.on("error", () => undefined);
      c.on("close", () => (connection = undefined));
      return c;
    });
    connection.catch(() => (connection = undefined));
    return connection;
  };
  return {
    name: "rabbitmq:queue",
    componentType: "component",
    run: async () => {
      const channel = await (await connect()).createChannel();
      try {
        const q = await channel.checkQueue(queue);
        return { observedValue: q.messageCount, observedUnit: "messages waiting" };
      } finally {
        await channel.close().catch(() => undefined);
      }
    },
    close: async () => {
      const c = await connection?.catch(() => undefined);
      await c?.close().catch(() => undefined);
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
