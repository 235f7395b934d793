/**
 * The Grafana dashboards, as code: one definition, the same JSON for Kubernetes (ConfigMaps the
 * Prometheus stack's Grafana sidecar loads) and Docker (files Grafana's provisioning loads), and the
 * panels scripts/dashboards.ts renders to PNG from the local stack's Prometheus. Every panel's queries
 * are run against a real Prometheus scraping the running service and worker, which must answer with
 * series (tests/e2e/dashboards.test.ts): a panel whose query matches nothing fails there.
 *
 * A panel whose numerator may not exist yet (no 5xx so far) adds `or … * 0` so it shows 0, not nothing.
 */
import { SLO } from "./render";

export interface PanelTarget {
  readonly expr: string;
  readonly legend: string;
}
export interface PanelSpec {
  readonly title: string;
  /** Grafana's unit id (reqps, s, percentunit, short, ops). */
  readonly unit: string;
  readonly targets: readonly PanelTarget[];
}
export interface DashboardSpec {
  readonly uid: string;
  readonly title: string;
  readonly panels: readonly PanelSpec[];
}

const NOT_PROBES = `route!~"/health.*|/metrics"`;
const TASK_QUEUES = `queue=~"celery|shopfds\\\\.email"`;
const rate = (series: string, by: string) => `sum by (${by}) (rate(${series}[5m]))`;

export const DASHBOARDS: readonly DashboardSpec[] = [
  {
    uid: "shopfds-service",
    title: "ShopFDS · Service (requests, errors, latency)",
    panels: [
      { title: "Requests per route", unit: "reqps", targets: [{ expr: rate(`shopfds_http_requests_total{${NOT_PROBES}}`, "method, route"), legend: "{{method}} {{route}}" }] },
      {
        title: "5xx share per route",
        unit: "percentunit",
        targets: [
          {
            expr: `(${rate(`shopfds_http_requests_total{${NOT_PROBES},status_code=~"5.."}`, "route")} or ${rate(`shopfds_http_requests_total{${NOT_PROBES}}`, "route")} * 0) / ${rate(`shopfds_http_requests_total{${NOT_PROBES}}`, "route")}`,
            legend: "{{route}}",
          },
        ],
      },
      {
        title: "p95 per route against the target",
        unit: "s",
        targets: [
          { expr: `histogram_quantile(0.95, ${rate(`shopfds_http_request_duration_seconds_bucket{${NOT_PROBES}}`, "route, le")})`, legend: "{{route}}" },
          { expr: `vector(${SLO.httpP95Seconds})`, legend: "target (ApiLatencyHigh)" },
        ],
      },
      { title: "Orders placed and blocked", unit: "reqps", targets: [{ expr: rate(`shopfds_http_requests_total{method="POST",route="/orders"}`, "status_code"), legend: "{{status_code}}" }] },
    ],
  },
  {
    uid: "shopfds-fds",
    title: "ShopFDS · Fraud detection",
    panels: [
      { title: "Decisions by risk level", unit: "ops", targets: [{ expr: rate("shopfds_fds_evaluations_total", "decision, level"), legend: "{{decision}} ({{level}})" }] },
      { title: "Blocks by reason", unit: "ops", targets: [{ expr: rate("shopfds_fds_block_reasons_total", "rule"), legend: "{{rule}}" }] },
      {
        title: "FDS decision p95 against the target",
        unit: "s",
        targets: [
          { expr: `histogram_quantile(0.95, ${rate("shopfds_fds_evaluation_duration_seconds_bucket", "le")})`, legend: "p95" },
          { expr: `vector(${SLO.fdsP95Seconds})`, legend: "target (SC-002, FdsEvaluationSlow)" },
        ],
      },
      {
        title: "Blacklist checks answered by Redis and by PostgreSQL",
        unit: "ops",
        targets: [
          { expr: "sum(rate(shopfds_blacklist_checks_total[5m])) - sum(rate(shopfds_blacklist_fallbacks_total[5m]))", legend: "Redis" },
          { expr: "sum(rate(shopfds_blacklist_fallbacks_total[5m]))", legend: "PostgreSQL (fallback)" },
        ],
      },
    ],
  },
  {
    uid: "shopfds-data",
    title: "ShopFDS · Database routing",
    panels: [
      { title: "Reads served by replicas (SC-001: ≥ 80 %)", unit: "percentunit", targets: [{ expr: `${rate('shopfds_db_reads_total{target="replica"}', "service")} / ${rate("shopfds_db_reads_total", "service")}`, legend: "{{service}}" }] },
      { title: "Replication lag per replica", unit: "s", targets: [{ expr: "max by (replica) (shopfds_db_replica_lag_seconds)", legend: "{{replica}}" }] },
      {
        title: "Pool use",
        unit: "short",
        targets: [
          { expr: 'sum by (service, pool) (shopfds_db_pool_connections{state="in_use"})', legend: "{{service}} {{pool}} in use" },
          { expr: "sum by (service, pool) (shopfds_db_pool_max_connections)", legend: "{{service}} {{pool}} max" },
          { expr: "sum by (service, pool) (shopfds_db_pool_waiting_clients)", legend: "{{service}} {{pool}} waiting" },
        ],
      },
    ],
  },
  {
    uid: "shopfds-tasks",
    title: "ShopFDS · Background tasks",
    panels: [
      { title: "Tasks by outcome", unit: "ops", targets: [{ expr: rate("shopfds_jobs_total", "outcome"), legend: "{{outcome}}" }] },
      { title: "Retries per task", unit: "ops", targets: [{ expr: rate('shopfds_jobs_total{outcome="retried"}', "task"), legend: "{{task}}" }] },
      { title: "Dead letters", unit: "short", targets: [{ expr: 'max by (queue) (rabbitmq_queue_messages_ready{queue="shopfds.dead"})', legend: "{{queue}}" }] },
      { title: "Queue depth", unit: "short", targets: [{ expr: `max by (queue) (rabbitmq_queue_messages_ready{${TASK_QUEUES}})`, legend: "{{queue}}" }] },
      { title: "Consumers per queue", unit: "short", targets: [{ expr: `max by (queue) (rabbitmq_queue_consumers{${TASK_QUEUES}})`, legend: "{{queue}}" }] },
      { title: "Task run time p95", unit: "s", targets: [{ expr: `histogram_quantile(0.95, ${rate("shopfds_job_duration_seconds_bucket", "task, le")})`, legend: "{{task}}" }] },
    ],
  },
];

/** A dashboard as Grafana's JSON model (schemaVersion 39), two panels a row. */
export function grafanaDashboard(d: DashboardSpec, datasourceUid = "prometheus"): Record<string, unknown> {
  return {
    uid: d.uid,
    title: d.title,
    tags: ["shopfds"],
    timezone: "browser",
    schemaVersion: 39,
    refresh: "30s",
    time: { from: "now-6h", to: "now" },
    panels: d.panels.map((p, i) => ({
      id: i + 1,
      type: "timeseries",
      title: p.title,
      gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
      datasource: { type: "prometheus", uid: datasourceUid },
      fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
      targets: p.targets.map((t, j) => ({ refId: String.fromCharCode(65 + j), expr: t.expr, legendFormat: t.legend, datasource: { type: "prometheus", uid: datasourceUid } })),
    })),
  };
}
