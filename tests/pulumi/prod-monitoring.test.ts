/**
 * Layer 2: monitoring in the prod stack stands on the Prometheus Operator (kube-prometheus-stack at a
 * pinned version: Prometheus, Alertmanager, node-exporter as a DaemonSet, kube-state-metrics, Grafana).
 * ShopFDS adds its rules as a PrometheusRule (every FR-026 alert, from the promtool-tested renderer),
 * its routes as an AlertmanagerConfig (Slack and e-mail, secrets by reference), ServiceMonitors for each
 * thing the rules read, and a Grafana dashboard. Every custom resource is judged against its CRD.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { DASHBOARDS, grafanaDashboard } from "../../components/monitoring/dashboards";
import { OPERATORS } from "../../components/platform/operators";
import { alertRuleGroups } from "../../components/monitoring/render";
import { parseStackOutputs } from "../../runtime/outputs";
import { validateCustomResource } from "./crd-schema";
import { contractOutputs, MockHarness, plainStrings, resolve } from "./harness";

const h = new MockHarness();
let program: typeof import("../../index");
const NS = "shopfds-prod";
const M = "shopfds-prod-monitoring";
const CR = (kind: string, version = "v1") => `kubernetes:monitoring.coreos.com/${version}:${kind}`;

before(async () => {
  program = await h.runProgram("prod");
});

describe("prod stack: monitoring on the Prometheus Operator", () => {
  it("installs kube-prometheus-stack at the pinned version, selecting every rule, monitor and labelled AlertmanagerConfig, with node-exporter and Grafana", async () => {
    const release = h.named("kubernetes:helm.sh/v3:Release", "shopfds-prod-operators-kube-prometheus-stack");
    const { chart, version, namespace, values } = release.inputs;
    assert.deepEqual([chart, version, namespace], ["kube-prometheus-stack", OPERATORS.prometheus.version, "monitoring"]);
    const spec = values.prometheus.prometheusSpec;
    assert.deepEqual([spec.ruleSelectorNilUsesHelmValues, spec.serviceMonitorSelectorNilUsesHelmValues, spec.podMonitorSelectorNilUsesHelmValues], [false, false, false]);
    assert.deepEqual([spec.scrapeInterval, spec.evaluationInterval], ["10s", "5s"], "the shipped timing (ALERT_TIMING: SC-007's worst case 28 s)");
    assert.equal(spec.storageSpec.volumeClaimTemplate.spec.resources.requests.storage, "10Gi");
    assert.deepEqual(values.alertmanager.alertmanagerSpec.alertmanagerConfigSelector, { matchLabels: { "shopfds.io/alertmanager": "true" } });
    assert.deepEqual(values.alertmanager.alertmanagerSpec.alertmanagerConfigMatcherStrategy, { type: "None" });
    assert.deepEqual([values.nodeExporter.enabled, values.kubeStateMetrics.enabled], [true, true]);
    assert.equal(values.grafana.sidecar.dashboards.searchNamespace, "ALL");
    assert.ok(values.grafana.adminPassword.length >= 24);
    assert.ok(!plainStrings(release.rawInputs).includes(values.grafana.adminPassword), "Grafana's password is secret");
    assert.equal((await resolve(program.grafana!.password)).secret, true);
  });

  it("holds every FR-026 alert in one PrometheusRule, valid against the operator's CRD", () => {
    const rule = h.named(CR("PrometheusRule"), `${M}-alerts`).inputs;
    assert.deepEqual(validateCustomResource("monitoring.coreos.com/v1", "PrometheusRule", rule), []);
    assert.deepEqual(rule.spec.groups, JSON.parse(JSON.stringify(alertRuleGroups("kubernetes"))));
    const alerts = new Set(rule.spec.groups.flatMap((g: any) => g.rules.map((r: any) => r.alert)));
    for (const a of ["HostHighCpu", "HostHighMemory", "HostDiskFull", "ApiErrorRate", "HealthCheckFailing", "ReplicationLagHigh", "PrimaryDown", "RedisClusterNotOk", "DeadLetterQueueGrowing", "TooFewWorkers", "ApiLatencyHigh", "FdsEvaluationSlow", "OrderFailureRate", "NoOrders", "QueueBacklog", "QueueWithoutConsumers", "RabbitMqDown", "RedisDown", "ElasticsearchDown", "BackupFailed", "BackupTooOld", "WalArchivingFailing", "ReadsServedByPrimary", "BlacklistAnsweredByPostgres", "PostgresReplicasNotStreaming", "PostgresConnectionsHigh", "RabbitMqMemoryAlarm", "RabbitMqDiskAlarm", "RedisConnectionsHigh"]) assert.ok(alerts.has(a), a);
  });

  it("routes alerts with an AlertmanagerConfig: critical to e-mail and Slack, warnings to Slack, the Watchdog nowhere; secrets by reference", () => {
    const amc = h.named(CR("AlertmanagerConfig", "v1alpha1"), `${M}-routes`).inputs;
    assert.deepEqual(validateCustomResource("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", amc), []);
    assert.equal(amc.metadata.labels["shopfds.io/alertmanager"], "true");
    assert.deepEqual(
      amc.spec.route.routes.map((r: any) => [r.receiver, r.matchers.map((m: any) => `${m.name}${m.matchType}${m.value}`).join(","), r.continue ?? false]),
      [["null", "alertname=Watchdog", false], ["email", "severity=critical", true], ["slack", "severity=~warning|critical", false]],
    );
    const receivers = Object.fromEntries(amc.spec.receivers.map((r: any) => [r.name, r]));
    assert.deepEqual(receivers.slack.slackConfigs[0].apiURL, { name: `${M}-alerting`, key: "slack-webhook-url" });
    assert.equal(receivers.slack.slackConfigs[0].channel, "#shopfds-alerts");
    assert.deepEqual(
      { ...receivers.email.emailConfigs[0] },
      { to: "oncall@shopfds.example", from: "ShopFDS <no-reply@shopfds.example>", smarthost: "email-smtp.ap-northeast-2.amazonaws.com:587", requireTLS: true, sendResolved: true, authUsername: "shopfds-ses", authPassword: { name: `${M}-alerting`, key: "smtp-password" } },
    );
    const secret = h.named("kubernetes:core/v1:Secret", `${M}-alerting`);
    assert.deepEqual(secret.inputs.stringData, { "slack-webhook-url": "https://hooks.slack.com/services/T000/B000/prodsecretwebhook", "smtp-password": "prod-smtp-secret-password" });
    assert.deepEqual(plainStrings(secret.rawInputs.stringData), []);
    for (const r of h.resources) assert.ok(!JSON.stringify(plainStrings(r.rawInputs)).includes("prodsecretwebhook"), `${r.type} ${r.name}`);
  });

  it("scrapes the service, the workers (as the rules' shopfds-services job), RabbitMQ and the Redis and Elasticsearch exporters through ServiceMonitors that select real Services", () => {
    const monitors = h.ofType(CR("ServiceMonitor"));
    assert.deepEqual(monitors.flatMap((m) => validateCustomResource("monitoring.coreos.com/v1", "ServiceMonitor", m.inputs)), []);
    const services = h.ofType("kubernetes:core/v1:Service").map((s) => s.inputs);
    // The RabbitMQ operator makes the broker's Service (`<cluster>`, labelled with its name); with
    // spec.tls and disableNonTLSListeners its ports are amqps, management-tls and prometheus-tls only
    // (internal/resource/service.go at v2.22.3: tests/fixtures/upstream/facts.yaml, rabbitmq-operator-tls).
    const rmq = h.named("kubernetes:rabbitmq.com/v1beta1:RabbitmqCluster", "shopfds-prod-rabbitmq").inputs.spec;
    assert.equal(rmq.tls?.disableNonTLSListeners, true);
    const operatorServices = [{ metadata: { labels: { "app.kubernetes.io/name": "shopfds-prod-rabbitmq" } }, spec: { ports: [{ name: "amqps" }, { name: "management-tls" }, { name: "prometheus-tls" }] } }];
    const summary = monitors.map((m) => {
      const selected = [...services, ...operatorServices].filter((s) => Object.entries(m.inputs.spec.selector.matchLabels).every(([k, v]) => s.metadata.labels?.[k] === v));
      const endpoint = m.inputs.spec.endpoints[0];
      assert.ok(selected.length > 0 && selected.every((s) => s.spec.ports.some((p: any) => p.name === endpoint.port)), `${m.name} selects a Service with port ${endpoint.port}`);
      return [m.name, endpoint.port, endpoint.relabelings?.[0]?.replacement];
    });
    assert.deepEqual(summary.sort(), [
      ["shopfds-prod-jobs-worker", "metrics", "shopfds-services"],
      ["shopfds-prod-logging-es-exporter", "metrics", "elasticsearch"],
      ["shopfds-prod-monitoring-redis-exporter", "metrics", "redis"],
      ["shopfds-prod-rabbitmq", "prometheus-tls", "rabbitmq"],
      ["shopfds-prod-service", "http", "shopfds-services"],
    ]);
    // The broker's metrics over HTTPS, checked against the stack's CA for the name its certificate carries
    // (Prometheus scrapes pods by IP); the Redis exporter over TLS against the same CA.
    const rabbit = monitors.find((m) => m.name === "shopfds-prod-rabbitmq")!.inputs.spec.endpoints[0];
    assert.deepEqual([rabbit.scheme, rabbit.tlsConfig], ["https", { ca: { secret: { name: "shopfds-prod-ca", key: "ca.crt" } }, serverName: "shopfds-prod-rabbitmq.shopfds-prod.svc" }]);
    const exporter = h.named("kubernetes:apps/v1:Deployment", "shopfds-prod-monitoring-redis-exporter").inputs.spec.template.spec;
    const args = [...(exporter.containers[0].command ?? []), ...(exporter.containers[0].args ?? [])];
    assert.ok(args.includes("--redis.addr=rediss://shopfds-prod-redis-node-0.shopfds-prod-redis-node.shopfds-prod.svc.cluster.local:6379"), args.join(" "));
    assert.ok(args.includes("--tls-ca-cert-file=/run/secrets/redis-ca/ca.crt"), args.join(" "));
    assert.deepEqual(exporter.volumes.find((v: any) => v.secret?.secretName === "shopfds-prod-redis-tls")?.secret.items, [{ key: "ca.crt", path: "ca.crt" }]);
    // PostgreSQL is scraped through the PodMonitor CloudNativePG creates for its Cluster.
    assert.deepEqual(h.named("kubernetes:postgresql.cnpg.io/v1:Cluster", "shopfds-prod-pg").inputs.spec.monitoring, { enablePodMonitor: true });
  });

  it("ships every ShopFDS dashboard to Grafana's sidecar, one ConfigMap each, the JSON of components/monitoring/dashboards.ts", () => {
    for (const d of DASHBOARDS) {
      const cm = h.named("kubernetes:core/v1:ConfigMap", `${M}-${d.uid}`).inputs;
      assert.equal(cm.metadata.labels.grafana_dashboard, "1");
      assert.deepEqual(JSON.parse(cm.data[`${d.uid}.json`]), grafanaDashboard(d));
    }
    assert.deepEqual(DASHBOARDS.map((d) => d.uid), ["shopfds-service", "shopfds-fds", "shopfds-data", "shopfds-tasks"]);
  });

  it("exports the monitoring URLs in the contract", async () => {
    const { monitoring } = parseStackOutputs({ ...(await contractOutputs(program)), monitoring: (await resolve(program.monitoring)).value });
    assert.deepEqual(monitoring, { prometheusUrl: "http://prometheus-stack-prometheus.monitoring.svc:9090/", alertmanagerUrl: "http://prometheus-stack-alertmanager.monitoring.svc:9093/" });
    assert.equal(NS, "shopfds-prod");
  });
});
