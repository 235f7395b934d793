/**
 * What `make dev` prints once the development environment is up, the same on both paths (the local
 * stack, or `pulumi up` of the dev stack on Docker): where each server and process answers, and which
 * version of each server runs, asked of the servers themselves (the local stack runs Debian's packages,
 * which are not the images the Docker and Kubernetes stacks pin).
 */
import { Client } from "pg";
import { Redis } from "ioredis";
import * as amqp from "amqplib";
import type { StackOutputs } from "../../runtime/outputs";

export interface ServerVersions {
  readonly postgres: string;
  readonly redis: string;
  readonly rabbitmq: string;
}

/** Asks each server its version (PostgreSQL's server_version, Redis's INFO, RabbitMQ's AMQP server properties). */
export async function serverVersions(outputs: StackOutputs): Promise<ServerVersions> {
  const pg = outputs.postgres;
  const postgres = (async () => {
    const client = new Client({ host: pg.primary.host, port: pg.primary.port, database: pg.database, user: pg.user, password: pg.password, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      return String((await client.query("SHOW server_version")).rows[0].server_version).split(" ")[0]!;
    } finally {
      await client.end();
    }
  })();
  const redis = (async () => {
    const node = outputs.redis.nodes[0]!;
    const client = new Redis({ host: node.host, port: node.port, password: outputs.redis.password, lazyConnect: true, connectTimeout: 5000, maxRetriesPerRequest: 1 });
    await client.connect();
    try {
      return /redis_version:(\S+)/.exec(await client.info("server"))?.[1] ?? "unknown";
    } finally {
      client.disconnect();
    }
  })();
  // The broker says its version when a connection opens (AMQP's server properties): no management rights needed.
  const rabbitmq = (async () => {
    const connection = await amqp.connect(outputs.rabbitmq.url, { timeout: 5000 });
    try {
      return String((connection.connection as unknown as { serverProperties: { version: string } }).serverProperties.version);
    } finally {
      await connection.close();
    }
  })();
  const [p, r, m] = await Promise.all([postgres, redis, rabbitmq]);
  return { postgres: p, redis: r, rabbitmq: m };
}

/** The servers: where each answers (passwords only in the outputs), and the versions they run. */
export function stackLines(outputs: StackOutputs, versions: ServerVersions, notes: { readonly smtp?: string; readonly monitoring?: string } = {}): string[] {
  const pg = outputs.postgres;
  return [
    `  PostgreSQL primary   postgres://${pg.user}@${pg.primary.host}:${pg.primary.port}/${pg.database}`,
    ...pg.replicas.map((r, n) => `  PostgreSQL replica ${n + 1} postgres://${pg.user}@${r.host}:${r.port}/${pg.database} (read-only, streaming)`),
    `  Redis Cluster        ${outputs.redis.nodes.map((n) => `${n.host}:${n.port}`).join(" ")} (3 masters + 3 replicas, password in the outputs)`,
    `  RabbitMQ             ${outputs.rabbitmq.url.replace(/:[^:@/]+@/, ":***@")} (management ${outputs.rabbitmq.managementUrl})`,
    ...(outputs.smtp ? [`  SMTP sink            ${outputs.smtp.host}:${outputs.smtp.port}${notes.smtp ? ` (${notes.smtp})` : ""}`] : []),
    ...(outputs.monitoring ? [`  Prometheus           ${outputs.monitoring.prometheusUrl}  Alertmanager ${outputs.monitoring.alertmanagerUrl}${notes.monitoring ? ` (${notes.monitoring})` : ""}`] : []),
    ...(outputs.logging ? [`  Kibana               ${outputs.logging.kibanaUrl}  Logstash ${outputs.logging.logstash.host}:${outputs.logging.logstash.port}`] : []),
    `  Versions             PostgreSQL ${versions.postgres}, Redis ${versions.redis}, RabbitMQ ${versions.rabbitmq}`,
  ];
}

/** The reference service and the dev admin's login. */
export function serviceLines(url: string, adminEmail: string, adminPasswordFile: string): string[] {
  return [
    `  Service              ${url}  (POST /orders, GET /orders/:id, POST /fds/evaluate, POST /login, /v1/admin/blacklist, /reports)`,
    `  Health               ${url}/health  ${url}/health/live  ${url}/health/ready   Metrics ${url}/metrics`,
    `  Admin login          ${adminEmail}, password in ${adminPasswordFile}`,
    `                       curl -s ${url}/login -H 'content-type: application/json' -d '{"email":"${adminEmail}","password":"'"$(cat ${adminPasswordFile})"'"}'`,
  ];
}
