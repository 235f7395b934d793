/**
 * Pure renderers for monitoring: prometheus.yml, the alert rules, and alertmanager.yml. Docker,
 * Kubernetes and the local stack ship what these return; `promtool` and `amtool` check them in the
 * test suite, and every alert has a unit test on both sides of its threshold and of its `for`.
 *
 * Each alert name covers both severities where there are two (same name, `severity` warning or
 * critical), so Alertmanager's inhibition can silence the warning while the critical one fires.
 */
import { stringify } from "yaml";
import { isSafePath, Problems } from "../validation";

export interface ScrapeJob {
  readonly name: string;
  readonly targets: readonly string[];
  /** Target files Prometheus watches (file_sd), so targets can be added without a restart. */
  readonly targetFiles?: readonly string[];
  /** @default "/metrics" */
  readonly metricsPath?: string;
  /** Labels added to every series of the job (e.g. `role: primary` for the PostgreSQL exporter). */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * The multi-target exporter pattern (`host:port` of the exporter): each of `targets` (then a URI such
   * as `redis://node-3:6379`) is scraped through it as `<metricsPath>?target=<target>`, and its series
   * carry `instance="<target>"`, so one exporter reports every node under the node's own name.
   */
  readonly via?: string;
}

export interface PrometheusConfigInput {
  readonly scrapeIntervalSeconds: number;
  readonly evaluationIntervalSeconds: number;
  /** `host:port` of each Alertmanager. */
  readonly alertmanagers: readonly string[];
  readonly ruleFiles: readonly string[];
  readonly jobs: readonly ScrapeJob[];
  /** Added to every series and alert, e.g. `{ environment: "prod" }`. */
  readonly externalLabels?: Readonly<Record<string, string>>;
}

export interface AlertmanagerConfigInput {
  /** File holding the Slack incoming-webhook URL (a secret). */
  readonly slackWebhookUrlFile: string;
  readonly slackChannel: string;
  readonly email: {
    readonly to: string;
    readonly from: string;
    /** `host:port` of the SMTP relay. */
    readonly smarthost: string;
    readonly username?: string;
    /** File holding the SMTP password (a secret). */
    readonly passwordFile?: string;
    readonly requireTls: boolean;
  };
}

/**
 * The shipped alert timing (SC-007: a notification within 30 s of the condition). The worst case from
 * the condition to the notification (alertLatencyWorstCase): up to a scrape interval until a sample
 * shows it (10 s), up to an evaluation interval until a rule sees that sample (5 s), the rule's `for`
 * (10 s for CPU and memory: two evaluations apart, across a second scrape, so a single bad sample does
 * not page), then Alertmanager's group_wait (3 s): 28 s. It was 10 + 10 + 10 + 5 = 35 s.
 * Flapping is kept out by the expressions' 1-minute windows (a short spike moves a 1-minute average
 * little) and by group_interval (5 m) between notifications of a group, not by long `for`s.
 */
export const ALERT_TIMING = { scrapeIntervalSeconds: 10, evaluationIntervalSeconds: 5, groupWait: "3s", groupInterval: "5m" } as const;

/** Seconds in a Prometheus duration of one unit (`10s`, `5m`, `1h`, `0m`). */
export function durationSeconds(d: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(d);
  if (!m) throw new RangeError(`duration: must be a number and one unit of ms, s, m, h (got ${JSON.stringify(d)})`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as "ms" | "s" | "m" | "h"];
}

/**
 * The longest time from a condition becoming true to Alertmanager sending the notification, for a rule
 * of `for` `forDuration` under `timing`: each term and the sum, in seconds.
 */
export function alertLatencyWorstCase(forDuration: string, timing: { scrapeIntervalSeconds: number; evaluationIntervalSeconds: number; groupWait: string } = ALERT_TIMING): { scrape: number; evaluation: number; for: number; groupWait: number; total: number } {
  const t = { scrape: timing.scrapeIntervalSeconds, evaluation: timing.evaluationIntervalSeconds, for: durationSeconds(forDuration), groupWait: durationSeconds(timing.groupWait) };
  return { ...t, total: t.scrape + t.evaluation + t.for + t.groupWait };
}

const isTarget = (s: unknown) => typeof s === "string" && /^[A-Za-z0-9.-]+:\d{1,5}$/.test(s);
const isProbeTarget = (s: unknown) => typeof s === "string" && /^([a-z][a-z0-9+.-]*:\/\/)?[A-Za-z0-9.-]+:\d{1,5}$/.test(s);

export function renderPrometheusConfig(input: PrometheusConfigInput): string {
  const p = new Problems("prometheus.yml");
  p.check(Number.isInteger(input.scrapeIntervalSeconds) && input.scrapeIntervalSeconds >= 1, "scrapeIntervalSeconds", "must be a positive integer", input.scrapeIntervalSeconds);
  p.check(Number.isInteger(input.evaluationIntervalSeconds) && input.evaluationIntervalSeconds >= 1, "evaluationIntervalSeconds", "must be a positive integer", input.evaluationIntervalSeconds);
  input.alertmanagers.forEach((a, i) => p.check(isTarget(a), `alertmanagers[${i}]`, "must be host:port", a));
  input.ruleFiles.forEach((f, i) => p.check(isSafePath(f), `ruleFiles[${i}]`, "must be an absolute path", f));
  const names = new Set<string>();
  input.jobs.forEach((j, i) => {
    p.check(/^[a-z][a-z0-9_-]*$/.test(j.name) && !names.has(j.name), `jobs[${i}].name`, "must be a unique lower-case name", j.name);
    names.add(j.name);
    if (j.via !== undefined) p.check(isTarget(j.via), `jobs[${i}].via`, "must be the exporter's host:port", j.via);
    j.targets.forEach((t, k) =>
      j.via === undefined ? p.check(isTarget(t), `jobs[${i}].targets[${k}]`, "must be host:port", t) : p.check(isProbeTarget(t), `jobs[${i}].targets[${k}]`, "must be host:port or scheme://host:port (scraped through via)", t),
    );
  });
  p.throwIfAny();
  return stringify({
    global: {
      scrape_interval: `${input.scrapeIntervalSeconds}s`,
      evaluation_interval: `${input.evaluationIntervalSeconds}s`,
      ...(input.externalLabels ? { external_labels: { ...input.externalLabels } } : {}),
    },
    alerting: { alertmanagers: [{ static_configs: [{ targets: [...input.alertmanagers] }] }] },
    rule_files: [...input.ruleFiles],
    scrape_configs: input.jobs.map((j) => ({
      job_name: j.name,
      metrics_path: j.metricsPath ?? "/metrics",
      static_configs: [{ targets: [...j.targets], ...(j.labels ? { labels: { ...j.labels } } : {}) }],
      ...(j.targetFiles?.length ? { file_sd_configs: [{ files: [...j.targetFiles], refresh_interval: "30s" }] } : {}),
      ...(j.via
        ? {
            relabel_configs: [
              { source_labels: ["__address__"], target_label: "__param_target" },
              { source_labels: ["__param_target"], target_label: "instance" },
              { target_label: "__address__", replacement: j.via },
            ],
          }
        : {}),
    })),
  });
}

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly labels: { readonly severity: "warning" | "critical" | "none" };
  readonly annotations: { readonly summary: string; readonly description: string; readonly runbook_url: string };
}

const RUNBOOKS = "https://github.com/shopfds/infrastructure/blob/main/docs/runbooks.md";
const rule = (alert: string, severity: AlertRule["labels"]["severity"], expr: string, forDuration: string, summary: string, description: string): AlertRule => ({
  alert,
  expr,
  for: forDuration,
  labels: { severity },
  annotations: { summary, description, runbook_url: `${RUNBOOKS}#${alert.toLowerCase()}` },
});

const CPU = `100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[1m])))`;
const MEMORY = `100 * (1 - avg_over_time(node_memory_MemAvailable_bytes[1m]) / avg_over_time(node_memory_MemTotal_bytes[1m]))`;
const DISK = `100 * (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs"})`;
const ERROR_RATE = `100 * sum by (service) (rate(shopfds_http_requests_total{status_code=~"5.."}[5m])) / sum by (service) (rate(shopfds_http_requests_total[5m]))`;
const ES_DISK = `100 * (1 - elasticsearch_filesystem_data_available_bytes / elasticsearch_filesystem_data_size_bytes)`;

/**
 * The service-level targets the latency alerts and the dashboards hold the service to: a request's
 * p95 (any route but /health* and /metrics) and the FDS decision's p95 (SC-002: a blacklisted request
 * blocked within 100 ms).
 */
export const SLO = { httpP95Seconds: 0.5, fdsP95Seconds: 0.1 } as const;
const NOT_PROBES = `route!~"/health.*|/metrics"`;
const HTTP_P95 = `histogram_quantile(0.95, sum by (service, route, le) (rate(shopfds_http_request_duration_seconds_bucket{${NOT_PROBES}}[5m])))`;
const FDS_P95 = `histogram_quantile(0.95, sum by (service, le) (rate(shopfds_fds_evaluation_duration_seconds_bucket[5m])))`;
const ORDERS = `shopfds_http_requests_total{method="POST",route="/orders"}`;
const ORDER_FAILURES = `100 * sum by (service) (rate(shopfds_http_requests_total{method="POST",route="/orders",status_code=~"5.."}[5m])) / sum by (service) (rate(${ORDERS}[5m]))`;
/** The task queues the workers consume (the e-mail worker's own and Celery's default). */
const TASK_QUEUES = `queue=~"celery|shopfds\\\\.email"`;
/** SC-001: at least 80 % of reads on the replicas. */
const PRIMARY_READ_SHARE = `100 * sum by (service) (rate(shopfds_db_reads_total{target="primary"}[10m])) / sum by (service) (rate(shopfds_db_reads_total[10m]))`;

/**
 * Where the rules run: `standalone` (Docker, local stack: postgres-exporter labels the primary) or
 * `kubernetes` (CloudNativePG's own metrics, scraped through its PodMonitor, say which instance is primary).
 */
export type RulesFlavour = "standalone" | "kubernetes";

/**
 * PostgreSQL primary down. Standalone: postgres-exporter cannot reach it. Kubernetes: no instance of the
 * cluster reports itself out of recovery (the primary died and nothing was promoted yet, or nothing is
 * scraped at all).
 */
const PRIMARY_DOWN: Record<RulesFlavour, { expr: string; description: string }> = {
  standalone: { expr: `pg_up{role="primary"} == 0`, description: "postgres-exporter cannot reach the primary: writes fail." },
  kubernetes: { expr: "(count(cnpg_pg_replication_in_recovery == 0) or vector(0)) == 0", description: "No CloudNativePG instance reports itself primary: writes fail until one is promoted." },
};

/**
 * Backups (Kubernetes: CloudNativePG's Barman backups to the object store, its collector's metrics). The
 * timestamps are 0 until the first backup of each kind.
 */
const BACKUP_RULES: AlertRule[] = [
  rule("BackupFailed", "critical", "cnpg_collector_last_failed_backup_timestamp > cnpg_collector_last_available_backup_timestamp", "5m", "The last PostgreSQL base backup of {{ $labels.pod }} failed", "The newest backup attempt failed after the last good one: read the Backup object's status (kubectl get backups)."),
  rule("BackupTooOld", "warning", "(time() - cnpg_collector_last_available_backup_timestamp > 26 * 3600) and (cnpg_collector_last_available_backup_timestamp > 0)", "30m", "No PostgreSQL base backup for over 26 hours", "The newest backup is {{ $value | printf \"%.0f\" }} s old; the schedule is daily."),
  rule("WalArchivingFailing", "critical", "increase(cnpg_pg_stat_archiver_failed_count[10m]) > 0 and increase(cnpg_pg_stat_archiver_archived_count[10m]) == 0", "10m", "WAL archiving of {{ $labels.pod }} fails", "No WAL segment reached the object store in 10 minutes: point-in-time recovery stops at the last archived one, and pg_wal grows."),
];

/**
 * CloudNativePG's own alerts, adapted (Kubernetes: its metrics exist only there). Neither the operator
 * nor its chart (cloudnative-pg 0.29.0) installs rules; these follow the `cluster` chart's
 * prometheus_rules/ (cloudnative-pg/charts cluster-v0.8.1: HA, connections) and the operator's sample
 * rules (cloudnative-pg v1.30.0 docs/src/samples/monitoring: long transactions, XID age, a replica not
 * receiving WAL), with one cluster per namespace and ShopFDS's severities. What they leave out: lag (ours,
 * ReplicationLagHigh, reads the router's own measure), disk (HostDiskFull), zone spread (needs a
 * kube-state-metrics label the stack does not export).
 */
const CNPG_RULES: AlertRule[] = [
  rule("PostgresReplicasNotStreaming", "critical", "max(cnpg_pg_replication_streaming_replicas - cnpg_pg_replication_is_wal_receiver_up) < 1", "5m", "No PostgreSQL replica is streaming from the primary", "A failover now would lose what is not archived, and reads all run on the primary (adapted from CloudNativePG's CNPGClusterHACritical)."),
  rule("PostgresReplicasNotStreaming", "warning", "max(cnpg_pg_replication_streaming_replicas - cnpg_pg_replication_is_wal_receiver_up) < 2", "5m", "Fewer than 2 PostgreSQL replicas are streaming", "{{ $value | printf \"%.0f\" }} replica(s) stream from the primary (adapted from CNPGClusterHAWarning)."),
  rule("PostgresConnectionsHigh", "warning", `100 * sum by (pod) (cnpg_backends_total) / max by (pod) (cnpg_pg_settings_setting{name="max_connections"}) > 80`, "5m", "{{ $labels.pod }} uses {{ $value | printf \"%.0f\" }} % of max_connections", "New connections will soon be refused (too many clients): check the pools' sizes against the instance count (adapted from CNPGClusterHighConnectionsWarning)."),
  rule("PostgresConnectionsHigh", "critical", `100 * sum by (pod) (cnpg_backends_total) / max by (pod) (cnpg_pg_settings_setting{name="max_connections"}) > 95`, "5m", "{{ $labels.pod }} uses {{ $value | printf \"%.0f\" }} % of max_connections", "Connections are about to be refused (adapted from CNPGClusterHighConnectionsCritical)."),
  rule("PostgresLongTransaction", "warning", "max by (pod) (cnpg_backends_max_tx_duration_seconds) > 300", "1m", "A transaction on {{ $labels.pod }} has been open for over 5 minutes", "It holds back vacuum and may hold locks orders wait for (the operator's sample rule LongRunningTransaction)."),
  rule("PostgresXidAgeHigh", "warning", "max by (pod, datname) (cnpg_pg_database_xid_age) > 300000000", "5m", "Database {{ $labels.datname }} is {{ $value | printf \"%.0f\" }} transactions from its oldest unfrozen XID", "Vacuum is not keeping up; at 2^31 PostgreSQL stops writes to avoid wraparound (the operator's sample rule PGDatabaseXidAge)."),
  rule("PostgresReplicaNotReceivingWal", "warning", "cnpg_pg_replication_in_recovery > cnpg_pg_replication_is_wal_receiver_up", "1m", "Replica {{ $labels.pod }} receives no WAL", "It is in recovery without a WAL receiver: it falls behind until it reconnects (the operator's sample rule ReplicaFailingReplication)."),
];

/**
 * The RabbitMQ cluster operator's observability rules, adapted (rabbitmq/cluster-operator v2.22.3
 * observability/prometheus/rules/rabbitmq/: alarms, file descriptors, unroutable messages): the operator
 * does not apply them itself (its README has them applied with kubectl), and they join on the
 * ServiceMonitor's namespace/pod labels, which the Docker and local stacks lack; these group by
 * `instance`, the one label every stack's scrape sets. Their queue rules are ours (QueueBacklog,
 * QueueWithoutConsumers); their Kubernetes-object rules need kube-state-metrics labels not exported.
 */
const RABBITMQ_VENDOR_RULES: AlertRule[] = [
  rule("RabbitMqMemoryAlarm", "critical", "max by (instance) (max_over_time(rabbitmq_alarms_memory_used_watermark[5m])) > 0", "0m", "RabbitMQ {{ $labels.instance }} is in a memory alarm", "The broker blocks every publishing connection: orders are refused with 503 (or wait for their e-mail in the outbox) until memory falls under the watermark (adapted from MemoryAlarm)."),
  rule("RabbitMqDiskAlarm", "critical", "max by (instance) (max_over_time(rabbitmq_alarms_free_disk_space_watermark[5m])) > 0", "0m", "RabbitMQ {{ $labels.instance }} is in a disk alarm", "Free disk is under the limit: publishers are blocked as in a memory alarm (adapted from RabbitmqDiskAlarm)."),
  rule("RabbitMqFileDescriptorsNearLimit", "warning", "sum by (instance) (max_over_time(rabbitmq_process_open_fds[5m])) / sum by (instance) (rabbitmq_process_max_fds) > 0.8", "10m", "RabbitMQ {{ $labels.instance }} uses over 80 % of its file descriptors", "At the limit it refuses new connections (adapted from FileDescriptorsNearLimit)."),
  rule("RabbitMqUnroutableMessages", "warning", "sum(increase(rabbitmq_channel_messages_unroutable_dropped_total[5m])) >= 1 or sum(increase(rabbitmq_channel_messages_unroutable_returned_total[5m])) >= 1", "1m", "Messages published to RabbitMQ reach no queue", "A publisher names an exchange or routing key no queue is bound to: those tasks are dropped or returned (adapted from UnroutableMessages)."),
];

/** The alert rules, one group per concern (FR-026, FR-027). */
export function alertRuleGroups(flavour: RulesFlavour = "standalone"): { name: string; rules: AlertRule[] }[] {
  return ruleGroups(flavour);
}

function ruleGroups(flavour: RulesFlavour): { name: string; rules: AlertRule[] }[] {
  return [
    {
      name: "host",
      rules: [
        rule("HostHighCpu", "warning", `${CPU} > 80`, "10s", "CPU above 80 % on {{ $labels.instance }}", "CPU use has been {{ $value | printf \"%.0f\" }} % over the last minute."),
        rule("HostHighCpu", "critical", `${CPU} > 90`, "10s", "CPU above 90 % on {{ $labels.instance }}", "CPU use has been {{ $value | printf \"%.0f\" }} % over the last minute."),
        rule("HostHighMemory", "warning", `${MEMORY} > 85`, "10s", "Memory above 85 % on {{ $labels.instance }}", "Memory use is {{ $value | printf \"%.0f\" }} %."),
        rule("HostHighMemory", "critical", `${MEMORY} > 95`, "10s", "Memory above 95 % on {{ $labels.instance }}", "Memory use is {{ $value | printf \"%.0f\" }} %."),
        rule("HostDiskFull", "warning", `${DISK} > 85`, "10m", "Disk {{ $labels.mountpoint }} above 85 % on {{ $labels.instance }}", "Disk use is {{ $value | printf \"%.0f\" }} %."),
        rule("HostDiskFull", "critical", `${DISK} > 95`, "5m", "Disk {{ $labels.mountpoint }} above 95 % on {{ $labels.instance }}", "Disk use is {{ $value | printf \"%.0f\" }} %."),
      ],
    },
    {
      name: "services",
      rules: [
        rule("ApiErrorRate", "warning", `${ERROR_RATE} > 5`, "5m", "{{ $labels.service }}: more than 5 % of requests fail", "{{ $value | printf \"%.1f\" }} % of requests answered 5xx over 5 minutes."),
        rule("ApiErrorRate", "critical", `${ERROR_RATE} > 10`, "5m", "{{ $labels.service }}: more than 10 % of requests fail", "{{ $value | printf \"%.1f\" }} % of requests answered 5xx over 5 minutes."),
        rule("HealthCheckFailing", "critical", `up{job="shopfds-services"} == 0`, "1m", "{{ $labels.instance }} does not answer its health and metrics endpoint", "Prometheus cannot scrape {{ $labels.instance }}."),
        rule("ApiLatencyHigh", "warning", `${HTTP_P95} > ${SLO.httpP95Seconds}`, "5m", "{{ $labels.service }} {{ $labels.route }}: p95 over its 500 ms target", "The slowest 5 % of requests took over {{ $value | printf \"%.2f\" }} s in the last 5 minutes."),
        rule("FdsEvaluationSlow", "warning", `${FDS_P95} > ${SLO.fdsP95Seconds}`, "5m", "{{ $labels.service }}: FDS decisions slower than 100 ms (p95)", "p95 {{ $value | printf \"%.3f\" }} s; SC-002 wants a blacklisted request blocked within 100 ms. Look at the blacklist's Redis and PostgreSQL."),
      ],
    },
    {
      name: "orders",
      rules: [
        rule("OrderFailureRate", "critical", `${ORDER_FAILURES} > 5`, "5m", "{{ $labels.service }}: more than 5 % of orders fail", "{{ $value | printf \"%.1f\" }} % of POST /orders answered 5xx over 5 minutes (FDS blocks, 403, are not failures)."),
        rule(
          "NoOrders",
          "warning",
          `(sum(rate(shopfds_http_requests_total{method="POST",route="/orders",status_code="201"}[15m])) or vector(0)) == 0 and on () (sum(rate(shopfds_http_requests_total{${NOT_PROBES}}[15m])) > 0.05)`,
          "15m",
          "No order placed for 15 minutes while the shop has traffic",
          "The service answers other requests but no POST /orders succeeded: checkout is broken somewhere before the service, or every order is refused.",
        ),
      ],
    },
    {
      name: "database",
      rules: [
        rule("ReplicationLagHigh", "warning", "max by (replica) (shopfds_db_replica_lag_seconds) > 10", "1m", "Replica {{ $labels.replica }} is more than 10 s behind", "Lag {{ $value | printf \"%.1f\" }} s; reads skip it until it catches up."),
        rule("ReplicaDown", "warning", "min by (replica) (shopfds_db_replica_up) == 0", "1m", "Replica {{ $labels.replica }} is out of rotation", "Reads fall back to the primary."),
        rule("PrimaryDown", "critical", PRIMARY_DOWN[flavour].expr, "1m", "The PostgreSQL primary is down", PRIMARY_DOWN[flavour].description),
        rule("ReadsServedByPrimary", "warning", `${PRIMARY_READ_SHARE} > 20`, "10m", "{{ $labels.service }}: {{ $value | printf \"%.0f\" }} % of reads run on the primary", "SC-001 wants at least 80 % on the replicas: replicas are out of rotation, lagging, or reads are marked fresh."),
        ...(flavour === "kubernetes" ? [...BACKUP_RULES, ...CNPG_RULES] : []),
      ],
    },
    {
      name: "redis",
      rules: [
        rule("RedisClusterNotOk", "critical", "min(redis_cluster_state) == 0", "1m", "The Redis Cluster state is not ok", "Blacklist checks fall back to PostgreSQL; sessions fail."),
        rule("RedisMemoryNearMax", "warning", "(redis_memory_used_bytes / redis_memory_max_bytes > 0.9) and (redis_memory_max_bytes > 0)", "2m", "Redis {{ $labels.instance }} uses over 90 % of its maxmemory", "The stacks run noeviction: at maxmemory the master refuses writes (blacklist changes are rolled back and answered 503, logins fail) while reads go on. Free or raise memory."),
        // Each node is scraped through the exporter (`instance` is the node): a node it cannot reach says
        // redis_up 0; an exporter that does not answer leaves no redis_up at all, only up 0.
        rule("RedisDown", "critical", `redis_up == 0 or up{job="redis"} == 0`, "1m", "Redis at {{ $labels.instance }} cannot be scraped", "redis_exporter cannot reach the node, or the exporter itself does not answer. Blacklist checks fall back to PostgreSQL; sessions and logins may fail."),
        rule("BlacklistAnsweredByPostgres", "warning", "sum by (service) (rate(shopfds_blacklist_fallbacks_total[5m])) > 0", "2m", "{{ $labels.service }}: blacklist checks answered by PostgreSQL", "{{ $value | printf \"%.2f\" }} checks/s fall back because Redis could not answer: still enforced, but slower and on the primary's load."),
        // Adapted from redis_exporter's mixin (v1.88.0 contrib/redis-mixin): connections against the
        // node's own maxclients rather than a fixed 100; failing slots, which precede a cluster not ok.
        rule("RedisConnectionsHigh", "warning", "redis_connected_clients / redis_config_maxclients > 0.8", "5m", "Redis {{ $labels.instance }} is over 80 % of maxclients", "New clients will be refused: look for a connection leak before raising maxclients (adapted from RedisTooManyConnections)."),
        rule("RedisClusterSlotsFailing", "warning", "max(redis_cluster_slots_fail) > 0 or max(redis_cluster_slots_pfail) > 0", "5m", "Redis Cluster slots are failing", "{{ $value | printf \"%.0f\" }} slot(s) in fail or pfail state: a node is unreachable and its keys may soon be unavailable (adapted from RedisClusterSlotFail/Pfail)."),
        rule("RedisMasterWithoutReplica", "warning", `(redis_connected_slaves < 1) and on (instance) (redis_instance_info{role="master"} == 1)`, "5m", "Redis master {{ $labels.instance }} has no replica", "Its slots would be lost with it."),
      ],
    },
    {
      name: "jobs",
      rules: [
        rule("DeadLetterQueueGrowing", "warning", `delta(rabbitmq_queue_messages_ready{queue="shopfds.dead"}[15m]) > 0`, "5m", "Tasks are being dead-lettered", "{{ $value | printf \"%.0f\" }} more dead letters in 15 minutes; read their x-shopfds-reason headers."),
        rule("CriticalTaskWaiting", "critical", "max(shopfds_tasks_waiting_over_24h) > 0", "5m", "Tasks have waited more than 24 hours", "{{ $value | printf \"%.0f\" }} task(s) pending or running for over a day."),
        rule("QueueBacklog", "warning", `max by (queue) (rabbitmq_queue_messages_ready{${TASK_QUEUES}}) > 1000`, "10m", "{{ $value | printf \"%.0f\" }} tasks waiting in {{ $labels.queue }}", "The workers do not keep up: scale them (docs/capacity.md) or look for a slow dependency."),
        rule("QueueWithoutConsumers", "critical", `max by (queue) (rabbitmq_queue_consumers{${TASK_QUEUES}}) == 0`, "1m", "No worker consumes {{ $labels.queue }}", "Tasks pile up unprocessed: e-mails, reports and the FDS batch wait."),
        ...RABBITMQ_VENDOR_RULES,
        rule("RabbitMqDown", "critical", "absent(rabbitmq_identity_info)", "1m", "RabbitMQ reports nothing", "No RabbitMQ node is scraped: orders are refused (503) or their e-mails wait in the outbox, and no task runs."),
        rule("TooFewWorkers", "critical", `max by (queue) (rabbitmq_queue_consumers{queue=~"celery|shopfds\\\\.email"}) < 2`, "5m", "Fewer than 2 workers consume {{ $labels.queue }}", "FR-015 needs at least 2 workers on each task queue (celery; shopfds.email, the e-mail worker's); {{ $value | printf \"%.0f\" }} now."),
      ],
    },
    {
      name: "elasticsearch",
      rules: [
        rule("ElasticsearchDown", "critical", "elasticsearch_cluster_health_up == 0", "2m", "elasticsearch_exporter cannot reach Elasticsearch", "Log lines queue in Logstash/Filebeat and are not searchable (SC-006)."),
        rule("ElasticsearchClusterRed", "critical", `elasticsearch_cluster_health_status{color="red"} == 1`, "5m", "Elasticsearch cluster {{ $labels.cluster }} is red", "A primary shard is unassigned: some log indices cannot be written or searched."),
        rule("ElasticsearchDiskFull", "warning", `${ES_DISK} > 85`, "10m", "Elasticsearch disk above 85 % on {{ $labels.name }}", "ILM deletes indices after 30 days; check the retention."),
        rule("ElasticsearchDiskFull", "critical", `${ES_DISK} > 95`, "5m", "Elasticsearch disk above 95 % on {{ $labels.name }}", "Indexing stops at the flood-stage watermark."),
      ],
    },
    {
      name: "meta",
      rules: [rule("Watchdog", "none", "vector(1)", "0m", "Always firing: proves the alerting pipeline works", "If this alert stops arriving, alerting is broken.")],
    },
  ];
}

export function renderAlertRules(flavour: RulesFlavour = "standalone"): string {
  return stringify({ groups: alertRuleGroups(flavour) });
}

export function renderAlertmanagerConfig(input: AlertmanagerConfigInput): string {
  const p = new Problems("alertmanager.yml");
  p.check(isSafePath(input.slackWebhookUrlFile), "slackWebhookUrlFile", "must be an absolute path", input.slackWebhookUrlFile);
  p.check(/^#[a-z0-9_-]+$/.test(input.slackChannel), "slackChannel", "must be a channel such as #alerts", input.slackChannel);
  p.check(/^[^@\s]+@[^@\s]+$/.test(input.email.to), "email.to", "must be an e-mail address", input.email.to);
  p.check(isTarget(input.email.smarthost), "email.smarthost", "must be host:port", input.email.smarthost);
  if (input.email.passwordFile !== undefined) p.check(isSafePath(input.email.passwordFile), "email.passwordFile", "must be an absolute path", input.email.passwordFile);
  p.throwIfAny();
  const slack = {
    api_url_file: input.slackWebhookUrlFile,
    channel: input.slackChannel,
    send_resolved: true,
    title: '[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }})',
    text: "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ .Annotations.description }}\nRunbook: {{ .Annotations.runbook_url }}\n{{ end }}",
  };
  return stringify({
    global: { resolve_timeout: "5m" },
    route: {
      receiver: "slack",
      group_by: ["alertname", "service", "instance"],
      group_wait: ALERT_TIMING.groupWait,
      group_interval: ALERT_TIMING.groupInterval,
      repeat_interval: "4h",
      routes: [
        // The Watchdog proves the pipeline in Prometheus's and Alertmanager's own UIs; it pages nobody.
        { receiver: "null", matchers: ['alertname="Watchdog"'] },
        // Critical alerts go to e-mail and continue to Slack (FR-027).
        { receiver: "email", matchers: ['severity="critical"'], continue: true },
        { receiver: "slack", matchers: ['severity=~"warning|critical"'] },
      ],
    },
    inhibit_rules: [{ source_matchers: ['severity="critical"'], target_matchers: ['severity="warning"'], equal: ["alertname", "instance", "service"] }],
    receivers: [
      { name: "null" },
      { name: "slack", slack_configs: [slack] },
      {
        name: "email",
        email_configs: [
          {
            to: input.email.to,
            from: input.email.from,
            smarthost: input.email.smarthost,
            require_tls: input.email.requireTls,
            send_resolved: true,
            ...(input.email.username ? { auth_username: input.email.username } : {}),
            ...(input.email.passwordFile ? { auth_password_file: input.email.passwordFile } : {}),
          },
        ],
      },
    ],
  });
}
