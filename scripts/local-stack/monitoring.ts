/**
 * The local stack's monitoring: Prometheus (with the rendered alert rules), Alertmanager and
 * node-exporter from Debian's packages, plus a Slack-compatible webhook sink and a trace sink (the same
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
}

const HOST = "127.0.0.1";
const PROCESSES = ["webhook-sink", "trace-sink", "node-exporter", "alertmanager", "prometheus"] as const;
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
        ...(o.jobs ?? []),
      ],
    }),
  );
  log(`prometheus on ${HOST}:${o.prometheusPort}, alertmanager on ${HOST}:${o.alertmanagerPort}, node-exporter on ${HOST}:${o.nodeExporterPort}, slack sink on ${HOST}:${o.webhookPort}, trace sink on ${HOST}:${o.traceSinkPort}`);
  launch(o, "webhook-sink", process.execPath, ["--import", "tsx", path.join(__dirname, "../../service/bin/webhook-sink.ts"), String(o.webhookPort), webhookDir(o)]);
  launch(o, "trace-sink", process.execPath, ["--import", "tsx", path.join(__dirname, "../../service/bin/webhook-sink.ts"), String(o.traceSinkPort), traceDir(o)]);
  launch(o, "node-exporter", "prometheus-node-exporter", [`--web.listen-address=${HOST}:${o.nodeExporterPort}`]);
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
  const ports: Record<Name, number> = { "webhook-sink": o.webhookPort, "trace-sink": o.traceSinkPort, "node-exporter": o.nodeExporterPort, alertmanager: o.alertmanagerPort, prometheus: o.prometheusPort };
  return PROCESSES.map((name) => ({ name, port: ports[name], pid: pid(o, name) }));
}
