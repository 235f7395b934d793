/**
 * The local stack's monitoring: Prometheus (with the rendered alert rules), Alertmanager,
 * node-exporter and redis_exporter (every Redis node scraped through it) from Debian's packages, plus a Slack-compatible webhook sink and a trace sink (the same
 * sink on its own port: what an OpenTelemetry collector receives over OTLP/HTTP JSON, kept as files, as
 * no collector can be installed here); e-mail alerts go to the
 * stack's SMTP sink. Each runs from the same renderers the Docker and Kubernetes stacks ship, on
 * loopback ports of its own, and is stopped by its PID.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { ALERT_TIMING, renderAlertmanagerConfig, renderAlertRules, renderPrometheusConfig, type ScrapeJob } from "../../components/monitoring/render";
import type { MonitoringOutputs } from "../../runtime/outputs";
import { pidFromFile, spawnDetached, stopPid, waitFor } from "./process";
import { redisNodeUris } from "../../components/monitoring/redis-exporter";
import type { Endpoint } from "../../components/platform/types";

export interface LocalMonitoringOptions {
  readonly dir: string;
  readonly prometheusPort: number;
  readonly alertmanagerPort: number;
  readonly nodeExporterPort: number;
  readonly webhookPort: number;
  /** The trace sink: the apps export their spans there (OTLP/HTTP, `POST /v1/traces`). */
  readonly traceSinkPort: number;
  /** The SMTP sink (or relay) that critical alerts are mailed through. */
  readonly smtpPort: number;
  /** Scrape jobs besides Prometheus, Alertmanager and node-exporter (e.g. RabbitMQ's plugin). */
  readonly jobs?: readonly ScrapeJob[];
  /** Debian's redis_exporter for the Redis Cluster: every node scraped through it, as the stacks do. */
  readonly redis?: { readonly exporterPort: number; readonly nodes: readonly Endpoint[]; readonly password: () => string };
}

const HOST = "127.0.0.1";
const PROCESSES = ["webhook-sink", "trace-sink", "node-exporter", "redis-exporter", "alertmanager", "prometheus"] as const;
type Name = (typeof PROCESSES)[number];

const pidFile = (o: LocalMonitoringOptions, name: Name) => path.join(o.dir, `${name}.pid`);
export const webhookDir = (o: LocalMonitoringOptions) => path.join(o.dir, "webhook-messages");
/** Each OTLP export the trace sink received: `{ path, receivedAt, body }`, body the OTLP JSON. */
export const traceDir = (o: LocalMonitoringOptions) => path.join(o.dir, "traces");
export const otlpEndpoint = (o: LocalMonitoringOptions) => `http://${HOST}:${o.traceSinkPort}`;
/** The file Prometheus watches for ShopFDS service targets (`[{ "targets": ["127.0.0.1:8080"] }]`). */
export const serviceTargetsFile = (o: LocalMonitoringOptions) => path.join(o.dir, "targets", "services.json");

const pid = (o: LocalMonitoringOptions, name: Name) => pidFromFile(pidFile(o, name));

function launch(o: LocalMonitoringOptions, name: Name, command: string, args: string[]): void {
  if (pid(o, name)) return;
  spawnDetached(command, args, { logFile: path.join(o.dir, `${name}.log`), pidFile: pidFile(o, name), cwd: path.resolve(__dirname, "../..") });
}

async function ready(url: string, what: string): Promise<void> {
  await waitFor(what, 60_000, async () => ((await fetch(url).catch(() => undefined))?.ok ? true : undefined));
}

export async function startMonitoring(o: LocalMonitoringOptions, log: (m: string) => void = () => {}): Promise<MonitoringOutputs> {
  for (const d of [o.dir, webhookDir(o), traceDir(o), path.dirname(serviceTargetsFile(o)), path.join(o.dir, "prometheus-data"), path.join(o.dir, "alertmanager-data")]) mkdirSync(d, { recursive: true });
  if (!existsSync(serviceTargetsFile(o))) writeFileSync(serviceTargetsFile(o), "[]\n");
  const slackUrlFile = path.join(o.dir, "slack-webhook-url");
  writeFileSync(slackUrlFile, `http://${HOST}:${o.webhookPort}/slack`, { mode: 0o600 });
  writeFileSync(path.join(o.dir, "rules.yml"), renderAlertRules());
  const redisUris = o.redis ? redisNodeUris(o.redis.nodes, false) : [];
  const redisPasswords = path.join(o.dir, "redis-passwords.json");
  if (o.redis) writeFileSync(redisPasswords, JSON.stringify(Object.fromEntries(redisUris.map((u) => [u, o.redis!.password()]))), { mode: 0o600 });
  writeFileSync(
    path.join(o.dir, "alertmanager.yml"),
    renderAlertmanagerConfig({
      slackWebhookUrlFile: slackUrlFile,
      slackChannel: "#shopfds-alerts",
      email: { to: "oncall@shopfds.local", from: "alertmanager@shopfds.local", smarthost: `${HOST}:${o.smtpPort}`, requireTls: false },
    }),
  );
  writeFileSync(
    path.join(o.dir, "prometheus.yml"),
    renderPrometheusConfig({
      // The shipped timing, as the stacks run it.
      scrapeIntervalSeconds: ALERT_TIMING.scrapeIntervalSeconds,
      evaluationIntervalSeconds: ALERT_TIMING.evaluationIntervalSeconds,
      alertmanagers: [`${HOST}:${o.alertmanagerPort}`],
      ruleFiles: [path.join(o.dir, "rules.yml")],
      jobs: [
        { name: "prometheus", targets: [`${HOST}:${o.prometheusPort}`] },
        { name: "alertmanager", targets: [`${HOST}:${o.alertmanagerPort}`] },
        { name: "node", targets: [`${HOST}:${o.nodeExporterPort}`] },
        { name: "shopfds-services", targets: [], targetFiles: [serviceTargetsFile(o)] },
        ...(o.redis ? [{ name: "redis", targets: redisUris, metricsPath: "/scrape", via: `${HOST}:${o.redis.exporterPort}` }] : []),
        ...(o.jobs ?? []),
      ],
    }),
  );
  log(`prometheus on ${HOST}:${o.prometheusPort}, alertmanager on ${HOST}:${o.alertmanagerPort}, node-exporter on ${HOST}:${o.nodeExporterPort}${o.redis ? `, redis_exporter on ${HOST}:${o.redis.exporterPort}` : ""}, slack sink on ${HOST}:${o.webhookPort}, trace sink on ${HOST}:${o.traceSinkPort}`);
  launch(o, "webhook-sink", process.execPath, ["--import", "tsx", path.join(__dirname, "../../service/bin/webhook-sink.ts"), String(o.webhookPort), webhookDir(o)]);
  launch(o, "trace-sink", process.execPath, ["--import", "tsx", path.join(__dirname, "../../service/bin/webhook-sink.ts"), String(o.traceSinkPort), traceDir(o)]);
  launch(o, "node-exporter", "prometheus-node-exporter", [`--web.listen-address=${HOST}:${o.nodeExporterPort}`]);
  if (o.redis) launch(o, "redis-exporter", "prometheus-redis-exporter", [`--web.listen-address=${HOST}:${o.redis.exporterPort}`, `--redis.addr=${redisUris[0]}`, "--is-cluster", `--redis.password-file=${redisPasswords}`]);
  launch(o, "alertmanager", "prometheus-alertmanager", [
    `--config.file=${path.join(o.dir, "alertmanager.yml")}`,
    `--storage.path=${path.join(o.dir, "alertmanager-data")}`,
    `--web.listen-address=${HOST}:${o.alertmanagerPort}`,
    // Empty: no clustering, so it does not listen on 0.0.0.0:9094 (MACHINE-NOTES).
    "--cluster.listen-address=",
  ]);
  launch(o, "prometheus", "prometheus", [
    `--config.file=${path.join(o.dir, "prometheus.yml")}`,
    `--storage.tsdb.path=${path.join(o.dir, "prometheus-data")}`,
    `--web.listen-address=${HOST}:${o.prometheusPort}`,
    "--storage.tsdb.retention.time=2d",
  ]);
  await Promise.all([
    ready(`http://${HOST}:${o.webhookPort}/-/ready`, "the webhook sink"),
    ready(`http://${HOST}:${o.traceSinkPort}/-/ready`, "the trace sink"),
    ready(`http://${HOST}:${o.nodeExporterPort}/metrics`, "node-exporter"),
    ...(o.redis ? [ready(`http://${HOST}:${o.redis.exporterPort}/metrics`, "redis_exporter")] : []),
    ready(`http://${HOST}:${o.alertmanagerPort}/-/ready`, "Alertmanager"),
    ready(`http://${HOST}:${o.prometheusPort}/-/ready`, "Prometheus"),
  ]);
  return { prometheusUrl: `http://${HOST}:${o.prometheusPort}/`, alertmanagerUrl: `http://${HOST}:${o.alertmanagerPort}/` };
}

export async function stopMonitoring(o: LocalMonitoringOptions): Promise<string[]> {
  const stopped: string[] = [];
  for (const name of [...PROCESSES].reverse()) {
    const p = pid(o, name);
    if (p) {
      await stopPid(p, "SIGTERM");
      stopped.push(name);
    }
  }
  return stopped;
}

export function monitoringStatus(o: LocalMonitoringOptions): { name: string; port: number; pid?: number }[] {
  const ports: Record<Name, number | undefined> = { "webhook-sink": o.webhookPort, "trace-sink": o.traceSinkPort, "node-exporter": o.nodeExporterPort, "redis-exporter": o.redis?.exporterPort, alertmanager: o.alertmanagerPort, prometheus: o.prometheusPort };
  return PROCESSES.filter((name) => ports[name] !== undefined).map((name) => ({ name, port: ports[name]!, pid: pid(o, name) }));
}
