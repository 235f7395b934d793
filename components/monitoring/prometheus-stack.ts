/**
 * Pure pieces of monitoring on the Prometheus Operator: the kube-prometheus-stack values, the
 * AlertmanagerConfig translated from the very alertmanager.yml the Docker stack runs (one routing
 * tree, two deliveries), and the ShopFDS Grafana dashboard.
 */
import { parse } from "yaml";
import { ALERT_TIMING, renderAlertmanagerConfig, type AlertmanagerConfigInput } from "./render";

/** Labels the Alertmanager selects AlertmanagerConfigs by, and Grafana's sidecar dashboards by. */
export const ALERTMANAGER_CONFIG_LABEL = { "shopfds.io/alertmanager": "true" } as const;
export const GRAFANA_DASHBOARD_LABEL = { grafana_dashboard: "1" } as const;
/**
 * The release's fullnameOverride: Services are `<this>-prometheus`, `<this>-alertmanager`; Grafana is a
 * sub-chart whose name follows its own fullnameOverride (set to `<this>-grafana` below), not this one.
 */
export const PROMETHEUS_STACK_NAME = "prometheus-stack";

export interface SecretKey {
  readonly name: string;
  readonly key: string;
}

interface Matcher {
  name: string;
  value: string;
  matchType: "=" | "!=" | "=~" | "!~";
}

/** `severity=~"warning|critical"` → { name, value, matchType }. */
export function parseMatcher(text: string): Matcher {
  const m = /^([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)"(.*)"$/.exec(text);
  if (!m) throw new Error(`alertmanager matcher ${JSON.stringify(text)}: expected name="value" (=, !=, =~, !~)`);
  return { name: m[1]!, matchType: m[2] as Matcher["matchType"], value: m[3]! };
}

interface RouteYaml {
  receiver?: string;
  group_by?: string[];
  group_wait?: string;
  group_interval?: string;
  repeat_interval?: string;
  matchers?: string[];
  continue?: boolean;
  routes?: RouteYaml[];
}

function route(r: RouteYaml): Record<string, unknown> {
  return {
    ...(r.receiver ? { receiver: r.receiver } : {}),
    ...(r.group_by ? { groupBy: r.group_by } : {}),
    ...(r.group_wait ? { groupWait: r.group_wait } : {}),
    ...(r.group_interval ? { groupInterval: r.group_interval } : {}),
    ...(r.repeat_interval ? { repeatInterval: r.repeat_interval } : {}),
    ...(r.matchers ? { matchers: r.matchers.map(parseMatcher) } : {}),
    ...(r.continue !== undefined ? { continue: r.continue } : {}),
    ...(r.routes ? { routes: r.routes.map(route) } : {}),
  };
}

/**
 * The spec of an AlertmanagerConfig equal to renderAlertmanagerConfig's file: same route tree, receivers
 * and inhibition, with the Slack URL and SMTP password as references to keys of a Secret (the operator
 * reads them; they never appear in the object).
 */
export function alertmanagerConfigSpec(input: Omit<AlertmanagerConfigInput, "slackWebhookUrlFile" | "email"> & { email: Omit<AlertmanagerConfigInput["email"], "passwordFile"> }, secrets: { slackWebhookUrl: SecretKey; smtpPassword?: SecretKey }): Record<string, unknown> {
  // Rendered with placeholder file paths, then each file reference is replaced by its Secret key.
  const rendered = parse(
    renderAlertmanagerConfig({ ...input, slackWebhookUrlFile: "/slack", email: { ...input.email, ...(secrets.smtpPassword ? { passwordFile: "/smtp" } : {}) } }),
  ) as { route: RouteYaml; receivers: Record<string, any>[]; inhibit_rules: Record<string, any>[] };
  return {
    route: route(rendered.route),
    receivers: rendered.receivers.map((r) => ({
      name: r.name,
      ...(r.slack_configs
        ? { slackConfigs: r.slack_configs.map((s: any) => ({ apiURL: secrets.slackWebhookUrl, channel: s.channel, sendResolved: s.send_resolved, title: s.title, text: s.text })) }
        : {}),
      ...(r.email_configs
        ? {
            emailConfigs: r.email_configs.map((e: any) => ({
              to: e.to,
              from: e.from,
              smarthost: e.smarthost,
              requireTLS: e.require_tls,
              sendResolved: e.send_resolved,
              ...(e.auth_username ? { authUsername: e.auth_username } : {}),
              ...(secrets.smtpPassword ? { authPassword: secrets.smtpPassword } : {}),
            })),
          }
        : {}),
    })),
    inhibitRules: rendered.inhibit_rules.map((i) => ({ sourceMatch: i.source_matchers.map(parseMatcher), targetMatch: i.target_matchers.map(parseMatcher), equal: i.equal })),
  };
}

export interface PrometheusStackValuesInput {
  readonly storageSize: string;
  readonly storageClass?: string;
  /** Grafana's admin password (a secret Output; Helm keeps values in a Secret of the release). */
  readonly grafanaAdminPassword: unknown;
  /** PROMETHEUS_STACK_MEMORY's profile. @default "production" */
  readonly size?: keyof typeof PROMETHEUS_STACK_MEMORY;
}

/**
 * Memory (request = limit) of every pod of the Prometheus stack, set because the chart sets none
 * (kube-prometheus-stack 88.0.0: every `resources: {}`; tests/fixtures/upstream/facts.yaml) and the
 * Alertmanager operator only adds a 200Mi request without limit. `small` fits the kind runner's budget
 * (tests/upstream/budgets.test.ts).
 */
export const PROMETHEUS_STACK_MEMORY = {
  small: { prometheus: "512Mi", configReloader: "32Mi", alertmanager: "96Mi", operator: "128Mi", grafana: "192Mi", grafanaSidecar: "64Mi", kubeStateMetrics: "64Mi", nodeExporter: "48Mi" },
  production: { prometheus: "4Gi", configReloader: "64Mi", alertmanager: "256Mi", operator: "256Mi", grafana: "512Mi", grafanaSidecar: "128Mi", kubeStateMetrics: "256Mi", nodeExporter: "128Mi" },
} as const;

const memory = (m: string) => ({ requests: { memory: m }, limits: { memory: m } });

/**
 * kube-prometheus-stack values: Prometheus picks up every PrometheusRule, ServiceMonitor and PodMonitor
 * in the cluster (not only the chart's own), at the alert timing the rules are tested with; Alertmanager
 * takes AlertmanagerConfigs labelled ALERTMANAGER_CONFIG_LABEL without confining them to their
 * namespace's alerts; Grafana loads dashboards labelled GRAFANA_DASHBOARD_LABEL from every namespace.
 * node-exporter (a DaemonSet with the host mounts it needs) and kube-state-metrics are the chart's.
 */
export function prometheusStackValues(input: PrometheusStackValuesInput): Record<string, unknown> {
  const claim = (size: string) => ({
    volumeClaimTemplate: { spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: size } }, ...(input.storageClass ? { storageClassName: input.storageClass } : {}) } },
  });
  const mem = PROMETHEUS_STACK_MEMORY[input.size ?? "production"];
  return {
    fullnameOverride: PROMETHEUS_STACK_NAME,
    prometheusOperator: {
      resources: memory(mem.operator),
      prometheusConfigReloader: { resources: memory(mem.configReloader) },
      admissionWebhooks: { patch: { resources: memory("64Mi") } },
    },
    prometheus: {
      prometheusSpec: {
        resources: memory(mem.prometheus),
        scrapeInterval: `${ALERT_TIMING.scrapeIntervalSeconds}s`,
        evaluationInterval: `${ALERT_TIMING.evaluationIntervalSeconds}s`,
        retention: "15d",
        ruleSelectorNilUsesHelmValues: false,
        serviceMonitorSelectorNilUsesHelmValues: false,
        podMonitorSelectorNilUsesHelmValues: false,
        ruleNamespaceSelector: {},
        serviceMonitorNamespaceSelector: {},
        podMonitorNamespaceSelector: {},
        storageSpec: claim(input.storageSize),
      },
    },
    alertmanager: {
      alertmanagerSpec: {
        alertmanagerConfigSelector: { matchLabels: { ...ALERTMANAGER_CONFIG_LABEL } },
        alertmanagerConfigNamespaceSelector: {},
        alertmanagerConfigMatcherStrategy: { type: "None" },
        resources: memory(mem.alertmanager),
        storage: claim("1Gi"),
      },
    },
    grafana: {
      // The sub-chart names its objects from its own fullnameOverride (release-"grafana" otherwise).
      fullnameOverride: `${PROMETHEUS_STACK_NAME}-grafana`,
      adminPassword: input.grafanaAdminPassword,
      resources: memory(mem.grafana),
      sidecar: { resources: memory(mem.grafanaSidecar), dashboards: { enabled: true, label: Object.keys(GRAFANA_DASHBOARD_LABEL)[0], labelValue: "1", searchNamespace: "ALL" } },
    },
    nodeExporter: { enabled: true },
    "prometheus-node-exporter": { resources: memory(mem.nodeExporter) },
    kubeStateMetrics: { enabled: true },
    "kube-state-metrics": { resources: memory(mem.kubeStateMetrics) },
  };
}
