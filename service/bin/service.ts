/**
 * The reference ShopFDS service process (service/http/app.ts on node:http), wired to the stack the
 * outputs describe: the router over the primary and replicas, the Redis Cluster (blacklist, velocity,
 * sessions), the task producer, health checks, metrics, ECS logs on stdout and Sentry when the stack has
 * a project.
 *
 *   node --import tsx service/bin/service.ts [--port 8080] [--host 0.0.0.0]
 * Environment: the outputs (SHOPFDS_OUTPUTS_FILE …), SHOPFDS_PUBLIC_URL (where clients reach it, for
 * links), SHOPFDS_ENVIRONMENT (dev/staging/production; default dev), SHOPFDS_RELEASE, OTEL_EXPORTER_OTLP_ENDPOINT
 * (an OTLP/HTTP collector: traces; none: tracing off), OTEL_SERVICE_NAME (default shopfds-service).
 * SIGTERM/SIGINT: stops accepting, lets open requests finish (up to 10 s), closes its connections.
 */
// First: tracing (when the OTEL_* environment names a collector) patches node:http, pg and ioredis as they load.
import { tracing } from "@shopfds/runtime/tracing/register";
import { createServer } from "node:http";
import { createLogger } from "@shopfds/runtime/observability";
import { flushSentry, initSentry } from "@shopfds/runtime/observability";
import { loadStackOutputs } from "@shopfds/runtime";
import { buildServiceDeps } from "../deps";
import { createApp } from "../http/app";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

const ENVIRONMENTS = ["dev", "staging", "production"] as const;

async function main(): Promise<void> {
  const port = Number(option("port", process.env.PORT ?? "8080"));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port: must be a TCP port from 1 to 65535 (got ${option("port", "")})`);
  const host = option("host", "0.0.0.0");
  const environment = (process.env.SHOPFDS_ENVIRONMENT ?? "dev") as (typeof ENVIRONMENTS)[number];
  if (!ENVIRONMENTS.includes(environment)) throw new Error(`SHOPFDS_ENVIRONMENT: must be one of ${ENVIRONMENTS.join(", ")} (got ${JSON.stringify(environment)})`);
  const release = process.env.SHOPFDS_RELEASE;
  const log = createLogger({ service: "shopfds-service", environment, ...(release ? { version: release } : {}) });

  const outputs = await loadStackOutputs();
  initSentry({ ...(outputs.sentry ? { dsn: outputs.sentry.dsn } : {}), environment, service: "shopfds-service", ...(release ? { release } : {}) });
  const publicUrl = process.env.SHOPFDS_PUBLIC_URL ?? `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
  const deps = await buildServiceDeps(outputs, { service: "shopfds-service", environment, log, publicUrl });

  const server = createServer(await createApp(deps));
  server.keepAliveTimeout = 65_000; // longer than the load balancers' idle timeouts
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, host, resolve));
  log.info({ url: { full: publicUrl } }, `shopfds-service listening on ${host}:${port}`);

  const shutdown = (signal: string) => {
    log.info(`${signal}: stopping`);
    const force = setTimeout(() => process.exit(1), 10_000).unref();
    server.close(async () => {
      await Promise.allSettled([deps.close(), flushSentry(), tracing?.shutdown()]);
      clearTimeout(force);
      process.exit(0);
    });
    server.closeIdleConnections();
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

main().catch((e) => {
  console.error(`service: ${(e as Error).message}`);
  process.exit(1);
});
