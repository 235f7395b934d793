/**
 * Layer 1: the monitoring configs checked by the real tools. `promtool check config/rules`, then
 * `promtool test rules` with a unit test for every alert evaluated on both sides of its threshold
 * (a series above and one below) and of its `for` (pending, then firing); `amtool check-config` and
 * `amtool config routes test` prove warnings reach Slack only and critical alerts Slack and e-mail.
 * Each check is also shown failing on a wrong expectation, so it cannot pass by accident.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { ALERT_TIMING, alertLatencyWorstCase, alertRuleGroups, durationSeconds, renderAlertmanagerConfig, renderAlertRules, renderPrometheusConfig } from "../../components/monitoring/render";

const run = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), "shopfds-alerts-"));
const file = (name: string, text: string) => {
  writeFileSync(path.join(dir, name), text);
  return path.join(dir, name);
};
after(() => rmSync(dir, { recursive: true, force: true }));

type Labels = Record<string, string>;
interface Expect {
  readonly labels: Labels;
  /** The alert's value, for its annotations' `{{ $value }}`. */
  readonly value: number;
}
interface Case {
  readonly alert: string;
  readonly series: Record<string, string>;
  /** eval time → firing alerts (exactly these; [] while `for` has not elapsed). */
  readonly at: Record<string, Expect[]>;
}

const rules = alertRuleGroups().flatMap((g) => g.rules);
type AlertRuleLike = (typeof rules)[number];

/** Expands the annotation templates the way Prometheus does for the subset the rules use. */
function annotations(alert: string, severity: string, e: Expect, from: readonly AlertRuleLike[] = rules): Labels {
  const r = from.find((x) => x.alert === alert && x.labels.severity === severity)!;
  const expand = (t: string) =>
    t.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, k) => e.labels[k] ?? "").replace(/\{\{ \$value \| printf "%\.(\d)f" \}\}/g, (_, d) => e.value.toFixed(Number(d)));
  return { summary: expand(r.annotations.summary), description: expand(r.annotations.description), runbook_url: r.annotations.runbook_url };
}

const w = (labels: Labels, value: number): Expect => ({ labels: { ...labels, severity: "warning" }, value });
const c = (labels: Labels, value: number): Expect => ({ labels: { ...labels, severity: "critical" }, value });

const cases: Case[] = [
  {
    alert: "HostHighCpu",
    series: {
      'node_cpu_seconds_total{mode="idle",instance="busy",cpu="0"}': "0+9x30", // idle 15 %: CPU 85 %
      'node_cpu_seconds_total{mode="idle",instance="hot",cpu="0"}': "0+3x30", // idle 5 %: CPU 95 %
      'node_cpu_seconds_total{mode="idle",instance="calm",cpu="0"}': "0+18x30", // CPU 70 %
    },
    // Pending at the first evaluation that sees it, firing at the next (for: 10s).
    at: { "1m": [], "2m": [w({ instance: "busy" }, 85), w({ instance: "hot" }, 95), c({ instance: "hot" }, 95)] },
  },
  {
    alert: "HostHighMemory",
    series: {
      'node_memory_MemAvailable_bytes{instance="tight"}': "10x20",
      'node_memory_MemTotal_bytes{instance="tight"}': "100x20",
      'node_memory_MemAvailable_bytes{instance="full"}': "3x20",
      'node_memory_MemTotal_bytes{instance="full"}': "100x20",
      'node_memory_MemAvailable_bytes{instance="ok"}': "20x20",
      'node_memory_MemTotal_bytes{instance="ok"}': "100x20",
    },
    at: { "0m": [], "1m": [w({ instance: "tight" }, 90), w({ instance: "full" }, 97), c({ instance: "full" }, 97)] },
  },
  {
    alert: "HostDiskFull",
    series: {
      'node_filesystem_avail_bytes{instance="a",mountpoint="/",fstype="ext4"}': "10x20",
      'node_filesystem_size_bytes{instance="a",mountpoint="/",fstype="ext4"}': "100x20",
      'node_filesystem_avail_bytes{instance="b",mountpoint="/",fstype="ext4"}': "2x20",
      'node_filesystem_size_bytes{instance="b",mountpoint="/",fstype="ext4"}': "100x20",
      'node_filesystem_avail_bytes{instance="c",mountpoint="/",fstype="ext4"}': "50x20",
      'node_filesystem_size_bytes{instance="c",mountpoint="/",fstype="ext4"}': "100x20",
      'node_filesystem_avail_bytes{instance="d",mountpoint="/run",fstype="tmpfs"}': "1x20",
      'node_filesystem_size_bytes{instance="d",mountpoint="/run",fstype="tmpfs"}': "100x20",
    },
    at: {
      "4m": [],
      "7m": [c({ instance: "b", mountpoint: "/", fstype: "ext4" }, 98)],
      "12m": [w({ instance: "a", mountpoint: "/", fstype: "ext4" }, 90), w({ instance: "b", mountpoint: "/", fstype: "ext4" }, 98), c({ instance: "b", mountpoint: "/", fstype: "ext4" }, 98)],
    },
  },
  {
    alert: "ApiErrorRate",
    series: {
      'shopfds_http_requests_total{service="orders",status_code="500"}': "0+7x30",
      'shopfds_http_requests_total{service="orders",status_code="200"}': "0+93x30",
      'shopfds_http_requests_total{service="fds",status_code="503"}': "0+15x30",
      'shopfds_http_requests_total{service="fds",status_code="200"}': "0+85x30",
      'shopfds_http_requests_total{service="admin",status_code="500"}': "0+2x30",
      'shopfds_http_requests_total{service="admin",status_code="200"}': "0+98x30",
    },
    at: { "4m": [], "15m": [w({ service: "orders" }, 7), w({ service: "fds" }, 15), c({ service: "fds" }, 15)] },
  },
  {
    alert: "HealthCheckFailing",
    series: { 'up{job="shopfds-services",instance="api-1"}': "0x10", 'up{job="shopfds-services",instance="api-2"}': "1x10" },
    at: { "0m": [], "3m": [c({ job: "shopfds-services", instance: "api-1" }, 0)] },
  },
  {
    alert: "ReplicationLagHigh",
    series: { 'shopfds_db_replica_lag_seconds{replica="r1",service="orders"}': "12x10", 'shopfds_db_replica_lag_seconds{replica="r2",service="orders"}': "5x10" },
    at: { "0m": [], "3m": [w({ replica: "r1" }, 12)] },
  },
  {
    alert: "ReplicaDown",
    series: { 'shopfds_db_replica_up{replica="r1",service="orders"}': "0x10", 'shopfds_db_replica_up{replica="r2",service="orders"}': "1x10" },
    at: { "0m": [], "3m": [w({ replica: "r1" }, 0)] },
  },
  {
    alert: "PrimaryDown",
    series: { 'pg_up{role="primary",instance="pg-0"}': "0x10", 'pg_up{role="replica",instance="pg-1"}': "0x10" },
    at: { "0m": [], "3m": [c({ role: "primary", instance: "pg-0" }, 0)] },
  },
  {
    alert: "RedisClusterNotOk",
    series: { 'redis_cluster_state{instance="n1"}': "1 1 0 0 0 0 0 0", 'redis_cluster_state{instance="n2"}': "1x8" },
    at: { "1m": [], "2m": [], "4m": [c({}, 0)] },
  },
  {
    alert: "RedisMemoryNearMax",
    series: {
      'redis_memory_used_bytes{instance="n1"}': "80x3 95x10",
      'redis_memory_max_bytes{instance="n1"}': "100x13",
      'redis_memory_used_bytes{instance="n2"}': "99x13",
      'redis_memory_max_bytes{instance="n2"}': "0x13",
      'redis_memory_used_bytes{instance="n3"}': "85x13",
      'redis_memory_max_bytes{instance="n3"}': "100x13",
    },
    at: { "3m": [], "5m": [], "7m": [w({ instance: "n1" }, 0.95)] },
  },
  {
    alert: "RedisMasterWithoutReplica",
    series: {
      'redis_connected_slaves{instance="m1"}': "0x10",
      'redis_instance_info{instance="m1",role="master"}': "1x10",
      'redis_connected_slaves{instance="m2"}': "1x10",
      'redis_instance_info{instance="m2",role="master"}': "1x10",
      'redis_connected_slaves{instance="s1"}': "0x10",
      'redis_instance_info{instance="s1",role="slave"}': "1x10",
    },
    at: { "3m": [], "6m": [w({ instance: "m1" }, 0)] },
  },
  {
    alert: "DeadLetterQueueGrowing",
    series: { 'rabbitmq_queue_messages_ready{queue="shopfds.dead",vhost="shopfds"}': "0+1x40", 'rabbitmq_queue_messages_ready{queue="celery",vhost="shopfds"}': "0+1x40" },
    at: { "3m": [], "25m": [w({ queue: "shopfds.dead", vhost: "shopfds" }, 15)] },
  },
  {
    alert: "CriticalTaskWaiting",
    series: { 'shopfds_tasks_waiting_over_24h{instance="worker-1"}': "0 0 0 2 2 2 2 2 2 2 2 2" },
    at: { "4m": [], "9m": [c({}, 2)] },
  },
  {
    alert: "TooFewWorkers",
    series: { 'rabbitmq_queue_consumers{queue="celery",vhost="shopfds"}': "2 2 1 1 1 1 1 1 1 1 1", 'rabbitmq_queue_consumers{queue="shopfds.email",vhost="shopfds"}': "2 2 2 2 2 2 0 0 0 0 0 0 0 0 0 0 0 0", 'rabbitmq_queue_consumers{queue="other",vhost="shopfds"}': "0x20" },
    at: { "1m": [], "4m": [], "8m": [c({ queue: "celery" }, 1)], "12m": [c({ queue: "celery" }, 1), c({ queue: "shopfds.email" }, 0)] },
  },
  {
    alert: "ApiLatencyHigh",
    // /orders: every request between 0.5 and 2.5 s (p95 2.4 s); /products under 0.25 s; /health slow but a probe.
    series: {
      'shopfds_http_request_duration_seconds_bucket{service="svc",route="/orders",le="0.5"}': "0x30",
      'shopfds_http_request_duration_seconds_bucket{service="svc",route="/orders",le="2.5"}': "0+10x30",
      'shopfds_http_request_duration_seconds_bucket{service="svc",route="/orders",le="+Inf"}': "0+10x30",
      'shopfds_http_request_duration_seconds_bucket{service="svc",route="/products",le="0.1"}': "0x30",
      'shopfds_http_request_duration_seconds_bucket{service="svc",route="/products",le="0.25"}': "0+10x30",
      'shopfds_http_request_duration_seconds_bucket{service="svc",route="/products",le="+Inf"}': "0+10x30",
      'shopfds_http_request_duration_seconds_bucket{service="svc",route="/health/ready",le="0.5"}': "0x30",
      'shopfds_http_request_duration_seconds_bucket{service="svc",route="/health/ready",le="+Inf"}': "0+10x30",
    },
    at: { "4m": [], "10m": [w({ service: "svc", route: "/orders" }, 2.4)] },
  },
  {
    alert: "FdsEvaluationSlow",
    // slow: 90 % within 0.1 s, the rest up to 0.25 s (p95 0.175 s); fast: everything within 0.05 s.
    series: {
      'shopfds_fds_evaluation_duration_seconds_bucket{service="slow",le="0.05"}': "0x30",
      'shopfds_fds_evaluation_duration_seconds_bucket{service="slow",le="0.1"}': "0+9x30",
      'shopfds_fds_evaluation_duration_seconds_bucket{service="slow",le="0.25"}': "0+10x30",
      'shopfds_fds_evaluation_duration_seconds_bucket{service="slow",le="+Inf"}': "0+10x30",
      'shopfds_fds_evaluation_duration_seconds_bucket{service="fast",le="0.05"}': "0+10x30",
      'shopfds_fds_evaluation_duration_seconds_bucket{service="fast",le="0.1"}': "0+10x30",
      'shopfds_fds_evaluation_duration_seconds_bucket{service="fast",le="+Inf"}': "0+10x30",
    },
    at: { "4m": [], "10m": [w({ service: "slow" }, 0.175)] },
  },
  {
    alert: "OrderFailureRate",
    // a: 10 % of orders answer 5xx; b: 3 %, and its 403s (FDS blocks) are no failures.
    series: {
      'shopfds_http_requests_total{service="a",method="POST",route="/orders",status_code="201"}': "0+90x30",
      'shopfds_http_requests_total{service="a",method="POST",route="/orders",status_code="500"}': "0+10x30",
      'shopfds_http_requests_total{service="b",method="POST",route="/orders",status_code="201"}': "0+77x30",
      'shopfds_http_requests_total{service="b",method="POST",route="/orders",status_code="403"}': "0+20x30",
      'shopfds_http_requests_total{service="b",method="POST",route="/orders",status_code="503"}': "0+3x30",
      'shopfds_http_requests_total{service="b",method="GET",route="/orders/:id",status_code="500"}': "0+50x30",
    },
    at: { "4m": [], "10m": [c({ service: "a" }, 10)] },
  },
  {
    alert: "NoOrders",
    // Orders flow until 10m, then none while other requests go on: the 15-minute rate is 0 from 25m, firing from 40m.
    series: {
      'shopfds_http_requests_total{service="svc",method="POST",route="/orders",status_code="201"}': "0+5x10 50x60",
      'shopfds_http_requests_total{service="svc",method="GET",route="/orders/:id",status_code="200"}': "0+10x70",
    },
    at: { "20m": [], "39m": [], "41m": [w({}, 0)] },
  },
  {
    alert: "ReadsServedByPrimary",
    series: {
      'shopfds_db_reads_total{service="a",target="primary"}': "0+30x30",
      'shopfds_db_reads_total{service="a",target="replica"}': "0+70x30",
      'shopfds_db_reads_total{service="b",target="primary"}': "0+10x30",
      'shopfds_db_reads_total{service="b",target="replica"}': "0+90x30",
    },
    at: { "9m": [], "13m": [w({ service: "a" }, 30)] },
  },
  {
    alert: "RedisDown",
    // n1: the exporter answers, the node does not; n3: the exporter does not answer for it (no redis_up).
    series: { 'redis_up{instance="n1"}': "0x10", 'redis_up{instance="n2"}': "1x10", 'up{job="redis",instance="n1"}': "1x10", 'up{job="redis",instance="n2"}': "1x10", 'up{job="redis",instance="n3"}': "0x10", 'up{job="node",instance="x"}': "0x10" },
    at: { "0m": [], "3m": [c({ instance: "n1" }, 0), c({ instance: "n3", job: "redis" }, 0)] },
  },
  {
    alert: "BlacklistAnsweredByPostgres",
    series: { 'shopfds_blacklist_fallbacks_total{service="a"}': "0+6x10", 'shopfds_blacklist_fallbacks_total{service="b"}': "5x10" },
    at: { "2m": [], "7m": [w({ service: "a" }, 0.1)] },
  },
  {
    alert: "QueueBacklog",
    // celery passes 1000 ready at 6m (firing from 16m); the e-mail queue stays short; another queue is not a task queue.
    series: {
      'rabbitmq_queue_messages_ready{queue="celery",vhost="shopfds"}': "500+100x20",
      'rabbitmq_queue_messages_ready{queue="shopfds.email",vhost="shopfds"}': "10x20",
      'rabbitmq_queue_messages_ready{queue="reports.archive",vhost="shopfds"}': "5000x20",
    },
    at: { "5m": [], "15m": [], "17m": [w({ queue: "celery" }, 2200)] },
  },
  {
    alert: "QueueWithoutConsumers",
    series: {
      'rabbitmq_queue_consumers{queue="celery",vhost="shopfds"}': "2 2 0 0 0 0 0",
      'rabbitmq_queue_consumers{queue="shopfds.email",vhost="shopfds"}': "1x6",
      'rabbitmq_queue_consumers{queue="other",vhost="shopfds"}': "0x6",
    },
    at: { "2m": [], "4m": [c({ queue: "celery" }, 0)] },
  },
  {
    alert: "RabbitMqDown",
    series: { 'rabbitmq_identity_info{rabbitmq_node="rabbit@a",rabbitmq_cluster="shopfds"}': "1 1 1 stale" },
    at: { "2m": [], "3m": [], "5m": [c({}, 1)] },
  },
  {
    alert: "ElasticsearchDown",
    series: { 'elasticsearch_cluster_health_up{cluster="logs"}': "1 1 0 0 0 0 0 0" },
    at: { "1m": [], "3m": [], "5m": [c({ cluster: "logs" }, 0)] },
  },
  {
    alert: "ElasticsearchClusterRed",
    series: {
      'elasticsearch_cluster_health_status{cluster="logs",color="red"}': "0 0 1 1 1 1 1 1 1 1",
      'elasticsearch_cluster_health_status{cluster="logs",color="green"}': "1 1 0 0 0 0 0 0 0 0",
    },
    at: { "1m": [], "6m": [], "8m": [c({ cluster: "logs", color: "red" }, 1)] },
  },
  {
    alert: "RabbitMqMemoryAlarm",
    // r1 in alarm for one sample at 2m: firing at once, and for the 5 minutes the window holds it.
    series: { 'rabbitmq_alarms_memory_used_watermark{instance="r1"}': "0 0 1 0 0 0 0 0 0 0 0", 'rabbitmq_alarms_memory_used_watermark{instance="r2"}': "0x10" },
    at: { "1m": [], "3m": [c({ instance: "r1" }, 1)], "8m": [] },
  },
  {
    alert: "RabbitMqDiskAlarm",
    series: { 'rabbitmq_alarms_free_disk_space_watermark{instance="r1"}': "0x10", 'rabbitmq_alarms_free_disk_space_watermark{instance="r2"}': "0 1 1 0 0 0 0 0 0 0 0" },
    at: { "0m": [], "2m": [c({ instance: "r2" }, 1)], "8m": [] },
  },
  {
    alert: "RabbitMqFileDescriptorsNearLimit",
    series: {
      'rabbitmq_process_open_fds{instance="r1"}': "900x20",
      'rabbitmq_process_max_fds{instance="r1"}': "1000x20",
      'rabbitmq_process_open_fds{instance="r2"}': "500x20",
      'rabbitmq_process_max_fds{instance="r2"}': "1000x20",
    },
    at: { "9m": [], "11m": [w({ instance: "r1" }, 0.9)] },
  },
  {
    alert: "RabbitMqUnroutableMessages",
    series: { 'rabbitmq_channel_messages_unroutable_dropped_total{instance="r1"}': "0 0 0 1 2 3 3 3 3 3 3 3 3 3 3", 'rabbitmq_channel_messages_unroutable_returned_total{instance="r1"}': "0x15" },
    at: { "2m": [], "3m": [], "5m": [w({}, 2)] },
  },
  {
    alert: "RedisConnectionsHigh",
    series: {
      'redis_connected_clients{instance="n1"}': "9000x10",
      'redis_config_maxclients{instance="n1"}': "10000x10",
      'redis_connected_clients{instance="n2"}': "100x10",
      'redis_config_maxclients{instance="n2"}': "10000x10",
    },
    at: { "4m": [], "6m": [w({ instance: "n1" }, 0.9)] },
  },
  {
    alert: "RedisClusterSlotsFailing",
    series: { 'redis_cluster_slots_fail{instance="n1"}': "0 0 3 3 3 3 3 3 3 3", 'redis_cluster_slots_pfail{instance="n1"}': "0x10", 'redis_cluster_slots_fail{instance="n2"}': "0x10" },
    at: { "6m": [], "8m": [w({}, 3)] },
  },
  {
    alert: "ElasticsearchDiskFull",
    series: {
      'elasticsearch_filesystem_data_available_bytes{name="es-0"}': "10x20",
      'elasticsearch_filesystem_data_size_bytes{name="es-0"}': "100x20",
      'elasticsearch_filesystem_data_available_bytes{name="es-1"}': "3x20",
      'elasticsearch_filesystem_data_size_bytes{name="es-1"}': "100x20",
      'elasticsearch_filesystem_data_available_bytes{name="es-2"}': "40x20",
      'elasticsearch_filesystem_data_size_bytes{name="es-2"}': "100x20",
    },
    at: { "3m": [], "7m": [c({ name: "es-1" }, 97)], "12m": [w({ name: "es-0" }, 90), w({ name: "es-1" }, 97), c({ name: "es-1" }, 97)] },
  },
  {
    alert: "Watchdog",
    series: {},
    at: { "0m": [{ labels: { severity: "none" }, value: 1 }] },
  },
];

function testFile(rulesFile: string, list: readonly Case[], from: readonly AlertRuleLike[] = rules): string {
  return stringify({
    rule_files: [rulesFile],
    evaluation_interval: "1m",
    tests: list.map((k) => ({
      interval: "1m",
      input_series: Object.entries(k.series).map(([series, values]) => ({ series, values })),
      alert_rule_test: Object.entries(k.at).map(([at, expected]) => ({
        eval_time: at,
        alertname: k.alert,
        exp_alerts: expected.map((e) => ({ exp_labels: e.labels, exp_annotations: annotations(k.alert, e.labels.severity!, e, from) })),
      })),
    })),
  });
}

describe("SC-007: from the condition to the notification, worst case as shipped", () => {
  it("the CPU alerts notify within 30 s: scrape + evaluation + for + group_wait, printed", () => {
    for (const r of alertRuleGroups().flatMap((g) => g.rules).filter((r) => r.alert === "HostHighCpu")) {
      const w = alertLatencyWorstCase(r.for);
      console.log(`    ${r.alert} (${r.labels.severity}): scrape ${w.scrape} s + evaluation ${w.evaluation} s + for ${w.for} s + group_wait ${w.groupWait} s = ${w.total} s (SC-007: ≤ 30 s)`);
      assert.ok(w.total <= 30, `${r.alert} ${r.labels.severity}: ${w.total} s`);
      // Still two evaluations apart across a second scrape: one bad sample does not page.
      assert.ok(w.for >= ALERT_TIMING.scrapeIntervalSeconds && w.for >= 2 * ALERT_TIMING.evaluationIntervalSeconds, `for ${r.for}`);
    }
  });

  it("the former timing (evaluation 10 s, group_wait 5 s) is caught: 35 s", () => {
    const before = alertLatencyWorstCase("10s", { scrapeIntervalSeconds: 10, evaluationIntervalSeconds: 10, groupWait: "5s" });
    assert.equal(before.total, 35);
    assert.ok(before.total > 30);
  });

  it("reads Prometheus durations and names a bad one", () => {
    assert.deepEqual(["10s", "5m", "0m", "1h", "500ms"].map(durationSeconds), [10, 300, 0, 3600, 0.5]);
    assert.throws(() => durationSeconds("1m30s"), /duration: must be a number and one unit .* \(got "1m30s"\)/);
  });
});

describe("Prometheus: config and rules", () => {
  const rulesFile = file("rules.yml", renderAlertRules());

  it("promtool checks prometheus.yml and the rules", async () => {
    const config = file(
      "prometheus.yml",
      renderPrometheusConfig({
        scrapeIntervalSeconds: 15,
        evaluationIntervalSeconds: 15,
        alertmanagers: ["alertmanager:9093"],
        ruleFiles: [rulesFile],
        jobs: [
          { name: "node", targets: ["node-exporter:9100"] },
          { name: "redis", targets: ["redis://node-0:6379", "redis://node-1:6379"], metricsPath: "/scrape", via: "redis-exporter:9121" },
        ],
      }),
    );
    const { stdout } = await run("promtool", ["check", "config", config]);
    assert.match(stdout, /SUCCESS: 39 rules found/);
  });

  it("a job through an exporter (via): each target becomes the exporter's target parameter and the series' instance; bad addresses are named", () => {
    const job = { name: "redis", targets: ["rediss://node-0.redis:6379"], metricsPath: "/scrape", via: "redis-exporter:9121" };
    const config = parse(renderPrometheusConfig({ scrapeIntervalSeconds: 15, evaluationIntervalSeconds: 15, alertmanagers: [], ruleFiles: [], jobs: [job] }));
    assert.deepEqual(config.scrape_configs[0], {
      job_name: "redis",
      metrics_path: "/scrape",
      static_configs: [{ targets: ["rediss://node-0.redis:6379"] }],
      relabel_configs: [
        { source_labels: ["__address__"], target_label: "__param_target" },
        { source_labels: ["__param_target"], target_label: "instance" },
        { target_label: "__address__", replacement: "redis-exporter:9121" },
      ],
    });
    const bad = (j: object) => () => renderPrometheusConfig({ scrapeIntervalSeconds: 15, evaluationIntervalSeconds: 15, alertmanagers: [], ruleFiles: [], jobs: [{ ...job, ...j }] });
    assert.throws(bad({ via: "redis-exporter" }), /jobs\[0\]\.via: must be the exporter's host:port/);
    assert.throws(bad({ targets: ["redis://node 0:6379"] }), /jobs\[0\]\.targets\[0\]: must be host:port or scheme:\/\/host:port/);
    assert.throws(bad({ via: undefined }), /jobs\[0\]\.targets\[0\]: must be host:port/);
  });

  it("every alert has for, severity, summary, description and runbook_url, and a unit test below", () => {
    for (const r of rules) {
      assert.match(r.for, /^\d+[smh]$/, r.alert);
      assert.ok(["warning", "critical", "none"].includes(r.labels.severity), r.alert);
      assert.ok(r.annotations.summary && r.annotations.description && r.annotations.runbook_url.startsWith("https://"), r.alert);
    }
    assert.deepEqual([...new Set(rules.map((r) => r.alert))].sort(), cases.map((k) => k.alert).sort(), "one test case per alert");
  });

  it("every alert's runbook_url opens its own section of docs/runbooks.md (both flavours)", () => {
    const doc = readFileSync(path.resolve(__dirname, "../../docs/runbooks.md"), "utf8");
    // GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
    const anchors = new Set([...doc.matchAll(/^#{1,6} (.+)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^\w\- ]/g, "").replace(/ /g, "-")));
    const missing = (urls: string[]) => urls.filter((u) => !u.startsWith("https://github.com/shopfds/infrastructure/blob/main/docs/runbooks.md#") || !anchors.has(u.split("#")[1]!));
    const urls = [...new Set((["standalone", "kubernetes"] as const).flatMap((f) => alertRuleGroups(f).flatMap((g) => g.rules.map((r) => r.annotations.runbook_url))))];
    assert.ok(urls.length >= 40, `${urls.length} alerts`);
    assert.deepEqual(missing(urls), []);
    assert.deepEqual(missing(["https://github.com/shopfds/infrastructure/blob/main/docs/runbooks.md#nosuchalert"]).length, 1, "a section that does not exist is found missing");
  });

  it("promtool test rules: each alert on both sides of its threshold and of its for", async () => {
    const { stdout } = await run("promtool", ["test", "rules", file("tests.yml", testFile(rulesFile, cases))]);
    assert.match(stdout, /SUCCESS/);
  });

  it("the rule tests can fail: a wrong expectation is reported", async () => {
    const wrong: Case = { ...cases[0]!, at: { "1m": [w({ instance: "busy" }, 85)] } };
    await assert.rejects(run("promtool", ["test", "rules", file("wrong.yml", testFile(rulesFile, [wrong]))]), (e: { stdout: string; stderr: string }) => /FAILED/.test(e.stdout + e.stderr));
  });
});

describe("Prometheus rules on Kubernetes (the PrometheusRule's groups)", () => {
  const k8sRules = alertRuleGroups("kubernetes").flatMap((g) => g.rules);
  const rulesFile = file("k8s-rules.yml", renderAlertRules("kubernetes"));

  it("holds the standalone rules plus the backup alerts; only PrimaryDown reads CloudNativePG's metrics differently", async () => {
    const standalone = rules.map((r) => `${r.alert}/${r.labels.severity}`);
    const k8sOnly = /^(BackupFailed|BackupTooOld|WalArchivingFailing|Postgres[A-Za-z]+)\//;
    assert.deepEqual(k8sRules.map((r) => `${r.alert}/${r.labels.severity}`).filter((a) => !k8sOnly.test(a)), standalone);
    assert.deepEqual(
      [...new Set(k8sRules.filter((r) => !rules.some((x) => x.alert === r.alert && x.expr === r.expr)).map((r) => r.alert))],
      ["PrimaryDown", "BackupFailed", "BackupTooOld", "WalArchivingFailing", "PostgresReplicasNotStreaming", "PostgresConnectionsHigh", "PostgresLongTransaction", "PostgresXidAgeHigh", "PostgresReplicaNotReceivingWal"],
    );
    assert.match((await run("promtool", ["check", "rules", rulesFile])).stdout, /SUCCESS: 49 rules found/);
  });

  it("promtool test rules: the backup and CloudNativePG alerts on both sides of their threshold and their for", async () => {
    const k8sCases: Case[] = [
      {
        alert: "BackupFailed",
        series: {
          'cnpg_collector_last_failed_backup_timestamp{pod="pg-1"}': "2000x10",
          'cnpg_collector_last_available_backup_timestamp{pod="pg-1"}': "1000x10",
          'cnpg_collector_last_failed_backup_timestamp{pod="pg-2"}': "500x10",
          'cnpg_collector_last_available_backup_timestamp{pod="pg-2"}': "1000x10",
        },
        at: { "4m": [], "6m": [c({ pod: "pg-1" }, 2000)] },
      },
      {
        alert: "BackupTooOld",
        // pg-1's newest backup is from t=1000 s: over 26 h old from 26.28 h, firing 30 minutes later; pg-2's is recent; pg-3 never had one (0).
        series: {
          'cnpg_collector_last_available_backup_timestamp{pod="pg-1"}': "1000x1700",
          'cnpg_collector_last_available_backup_timestamp{pod="pg-2"}': "90000x1700",
          'cnpg_collector_last_available_backup_timestamp{pod="pg-3"}': "0x1700",
        },
        at: { "26h": [], "26h30m": [], "27h": [w({ pod: "pg-1" }, 96200)] },
      },
      {
        alert: "WalArchivingFailing",
        series: {
          'cnpg_pg_stat_archiver_failed_count{pod="pg-1"}': "0+1x30",
          'cnpg_pg_stat_archiver_archived_count{pod="pg-1"}': "5x30",
          'cnpg_pg_stat_archiver_failed_count{pod="pg-2"}': "0+1x30",
          'cnpg_pg_stat_archiver_archived_count{pod="pg-2"}': "0+2x30",
        },
        at: { "9m": [], "12m": [c({ pod: "pg-1" }, 10)] },
      },
      {
        alert: "PostgresReplicasNotStreaming",
        // One of two replicas streams (warning from 5m), then none from 10m (critical too, from 15m).
        series: {
          'cnpg_pg_replication_streaming_replicas{pod="pg-1"}': "1x10 0x10",
          'cnpg_pg_replication_is_wal_receiver_up{pod="pg-1"}': "0x20",
          'cnpg_pg_replication_streaming_replicas{pod="pg-2"}': "0x20",
          'cnpg_pg_replication_is_wal_receiver_up{pod="pg-2"}': "1x20",
        },
        at: { "4m": [], "6m": [w({}, 1)], "16m": [w({}, 0), c({}, 0)] },
      },
      {
        alert: "PostgresConnectionsHigh",
        series: {
          'cnpg_backends_total{pod="pg-1",datname="shopfds",state="active"}': "85x10",
          'cnpg_backends_total{pod="pg-1",datname="shopfds",state="idle"}': "5x10",
          'cnpg_pg_settings_setting{pod="pg-1",name="max_connections"}': "100x10",
          'cnpg_backends_total{pod="pg-2",datname="shopfds",state="active"}': "10x10",
          'cnpg_pg_settings_setting{pod="pg-2",name="max_connections"}': "100x10",
          'cnpg_backends_total{pod="pg-3",datname="shopfds",state="active"}': "97x10",
          'cnpg_pg_settings_setting{pod="pg-3",name="max_connections"}': "100x10",
          'cnpg_pg_settings_setting{pod="pg-3",name="shared_buffers"}': "1x10",
        },
        at: { "4m": [], "6m": [w({ pod: "pg-1" }, 90), w({ pod: "pg-3" }, 97), c({ pod: "pg-3" }, 97)] },
      },
      {
        alert: "PostgresLongTransaction",
        series: { 'cnpg_backends_max_tx_duration_seconds{pod="pg-1"}': "100 200 400 400 400 400", 'cnpg_backends_max_tx_duration_seconds{pod="pg-2"}': "10x6" },
        at: { "2m": [], "4m": [w({ pod: "pg-1" }, 400)] },
      },
      {
        alert: "PostgresXidAgeHigh",
        series: { 'cnpg_pg_database_xid_age{pod="pg-1",datname="shopfds"}': "400000000x10", 'cnpg_pg_database_xid_age{pod="pg-1",datname="postgres"}': "1000x10" },
        at: { "4m": [], "6m": [w({ pod: "pg-1", datname: "shopfds" }, 400000000)] },
      },
      {
        alert: "PostgresReplicaNotReceivingWal",
        series: {
          'cnpg_pg_replication_in_recovery{pod="pg-1"}': "0x5",
          'cnpg_pg_replication_is_wal_receiver_up{pod="pg-1"}': "0x5",
          'cnpg_pg_replication_in_recovery{pod="pg-2"}': "1x5",
          'cnpg_pg_replication_is_wal_receiver_up{pod="pg-2"}': "0x5",
          'cnpg_pg_replication_in_recovery{pod="pg-3"}': "1x5",
          'cnpg_pg_replication_is_wal_receiver_up{pod="pg-3"}': "1x5",
        },
        at: { "0m": [], "2m": [w({ pod: "pg-2" }, 1)] },
      },
    ];
    const testOf = (list: Case[]) => testFile(rulesFile, list, k8sRules);
    assert.match((await run("promtool", ["test", "rules", file("k8s-backup-tests.yml", testOf(k8sCases))])).stdout, /SUCCESS/);
    // …and can fail: pg-2's recent backup is no alert.
    const wrong = testOf([{ ...k8sCases[1]!, at: { "27h": [w({ pod: "pg-2" }, 7200)] } }]);
    await assert.rejects(run("promtool", ["test", "rules", file("k8s-backup-wrong.yml", wrong)]), (e: { stdout: string; stderr: string }) => /FAILED/.test(e.stdout + e.stderr));
  });

  it("PrimaryDown fires a minute after no instance reports itself primary, and not while one does", async () => {
    const primaryDown = k8sRules.find((r) => r.alert === "PrimaryDown")!;
    const test = stringify({
      rule_files: [rulesFile],
      evaluation_interval: "1m",
      tests: [
        {
          interval: "1m",
          // pg-1 is the primary until 3m, then its series goes stale (pod gone); pg-2 stays a replica until pg-3 is promoted at 7m.
          input_series: [
            { series: 'cnpg_pg_replication_in_recovery{pod="pg-1"}', values: "0 0 0 0 stale" },
            { series: 'cnpg_pg_replication_in_recovery{pod="pg-2"}', values: "1x10" },
            { series: 'cnpg_pg_replication_in_recovery{pod="pg-3"}', values: "1 1 1 1 1 1 1 0 0 0 0" },
          ],
          alert_rule_test: [
            { eval_time: "2m", alertname: "PrimaryDown", exp_alerts: [] },
            { eval_time: "9m", alertname: "PrimaryDown", exp_alerts: [] },
            {
              eval_time: "6m",
              alertname: "PrimaryDown",
              exp_alerts: [{ exp_labels: { severity: "critical" }, exp_annotations: { summary: primaryDown.annotations.summary, description: primaryDown.annotations.description, runbook_url: primaryDown.annotations.runbook_url } }],
            },
          ],
        },
      ],
    });
    assert.match((await run("promtool", ["test", "rules", file("k8s-tests.yml", test)])).stdout, /SUCCESS/);
  });
});

describe("Alertmanager: routing", () => {
  const config = file(
    "alertmanager.yml",
    renderAlertmanagerConfig({
      slackWebhookUrlFile: "/run/secrets/slack-webhook-url",
      slackChannel: "#shopfds-alerts",
      email: { to: "oncall@shopfds.example", from: "alerts@shopfds.example", smarthost: "smtp.example:587", username: "alerts", passwordFile: "/run/secrets/smtp-password", requireTls: true },
    }),
  );
  const routes = async (...labels: string[]) => (await run("amtool", ["config", "routes", "test", `--config.file=${config}`, ...labels])).stdout.trim();

  it("amtool accepts the config; secrets are files, never values", async () => {
    const { stdout } = await run("amtool", ["check-config", config]);
    assert.match(stdout, /SUCCESS/);
    assert.match(stdout, /3 receivers/);
  });

  it("warnings reach Slack only; critical alerts reach Slack and e-mail; the Watchdog pages nobody", async () => {
    assert.equal(await routes("severity=warning", "alertname=HostHighCpu"), "slack");
    assert.equal(await routes("severity=critical", "alertname=HostHighCpu"), "email,slack");
    assert.equal(await routes("alertname=Watchdog", "severity=none"), "null");
    await run("amtool", ["config", "routes", "test", `--config.file=${config}`, "--verify.receivers=email,slack", "severity=critical"]);
    await assert.rejects(run("amtool", ["config", "routes", "test", `--config.file=${config}`, "--verify.receivers=email,slack", "severity=warning"]), "a warning must not page by e-mail");
  });
});
