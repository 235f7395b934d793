/**
 * Prometheus and Alertmanager with the exporters the alert rules read: node-exporter, postgres-exporter
 * (labelled role=primary), redis-exporter (the whole cluster) and RabbitMQ's own Prometheus plugin.
 * Configs come from the pure renderers; the Slack webhook URL, the SMTP password and the exporters'
 * database and Redis passwords reach the containers only as secret files.
 */
import * as pulumi from "@pulumi/pulumi";
import { DASHBOARDS, grafanaDashboard } from "./dashboards";
import { stringify } from "yaml";
import { DeployedService, Endpoint, Platform, ServiceSpec } from "../platform/types";
import { REDIS_EXPORTER_PASSWORDS, redisExporterSpec, redisNodeUris } from "./redis-exporter";
import { ALERT_TIMING, renderAlertmanagerConfig, renderAlertRules, renderPrometheusConfig, type ScrapeJob } from "./render";
import type { MonitoringStack } from "./stack";

export { redisExporterSpec };

export const MONITORING_PATHS = {
  prometheusConfig: "/etc/prometheus/prometheus.yml",
  rules: "/etc/prometheus/rules/shopfds.yml",
  alertmanagerConfig: "/etc/alertmanager/alertmanager.yml",
  slackWebhookUrl: "/run/secrets/slack-webhook-url",
  smtpPassword: "/run/secrets/smtp-password",
  postgresPassword: "/run/secrets/postgres-password",
  redisPasswords: REDIS_EXPORTER_PASSWORDS,
  elasticPassword: "/run/secrets/elastic-password",
  grafanaAdminPassword: "/run/secrets/grafana-admin-password",
  grafanaDatasources: "/etc/grafana/provisioning/datasources/prometheus.yaml",
  grafanaDashboardProvider: "/etc/grafana/provisioning/dashboards/shopfds.yaml",
  grafanaDashboards: "/etc/grafana/dashboards",
} as const;

/** Where node-exporter sees the host's root filesystem. */
export const HOST_ROOT = "/host";

export interface MonitoringArgs {
  readonly platform: Platform;
  readonly images: { readonly prometheus: string; readonly alertmanager: string; readonly nodeExporter: string; readonly postgresExporter: string; readonly redisExporter: string; readonly grafana: string };
  /** Grafana's admin password (a secret file; Grafana's run.sh reads GF_*__FILE variables). */
  readonly grafanaAdminPassword: pulumi.Input<string>;
  readonly storageSize: string;
  /** The Slack incoming-webhook URL (a secret). */
  readonly slackWebhookUrl: pulumi.Input<string>;
  readonly slackChannel: string;
  /** Where critical alerts are mailed. */
  readonly email: { readonly to: string; readonly from: string; readonly smarthost: string; readonly username?: string; readonly password?: pulumi.Input<string>; readonly requireTls: boolean };
  readonly postgres: { readonly primary: Endpoint; readonly database: string; readonly user: string; readonly password: pulumi.Input<string> };
  readonly redis: { readonly nodes: readonly Endpoint[]; readonly password: pulumi.Input<string> };
  /** RabbitMQ's Prometheus endpoint, `host:port`. */
  readonly rabbitmqMetrics: string;
  /** When the ELK stack runs: its URL and the `elastic` password, for the Elasticsearch exporter. */
  readonly elasticsearch?: { readonly url: string; readonly password: pulumi.Input<string>; readonly image: string };
  /** The ShopFDS services' /metrics endpoints (`host:port`): workers now, the service (issue 8) later. */
  readonly serviceTargets?: readonly string[];
  /** Docker only: Prometheus on 127.0.0.1:hostPort, Alertmanager on hostPort + 1, Grafana on hostPort + 2. */
  readonly hostPort?: number;
  readonly dependsOn?: readonly DeployedService[];
}

export class Monitoring extends pulumi.ComponentResource implements MonitoringStack {
  declare readonly prometheusUrl: string;
  declare readonly alertmanagerUrl: string;
  declare readonly grafanaUrl: string;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:monitoring:Monitoring", name, {}, opts);
    const p = args.platform;
    const small = { cpu: "50m", memory: "64Mi" };
    const httpCheck = (port: number, path: string) => ({
      command: ["wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${port}${path}`],
      intervalSeconds: 15,
      timeoutSeconds: 5,
      retries: 3,
      startPeriodSeconds: 20,
    });

    // The host's filesystems, not the container's: node-exporter reads them under --path.rootfs, the
    // host's / mounted read-only there (its README at v1.5.0; tests/fixtures/upstream/facts.yaml).
    const nodeExporter = p.deploy(
      {
        name: `${name}-node-exporter`,
        role: "node-exporter",
        instance: name,
        image: args.images.nodeExporter,
        command: [`--path.rootfs=${HOST_ROOT}`],
        hostPaths: [{ hostPath: "/", mountPath: HOST_ROOT }],
        ports: [{ name: "metrics", port: 9100 }],
        healthCheck: httpCheck(9100, "/metrics"),
        resources: small,
        replicas: 1,
        runAs: { uid: 65534, gid: 65534 },
      },
      this,
    );
    const pgExporter = p.deploy(
      {
        name: `${name}-postgres-exporter`,
        role: "postgres-exporter",
        instance: name,
        image: args.images.postgresExporter,
        env: {
          DATA_SOURCE_URI: `${args.postgres.primary.host}:${args.postgres.primary.port}/${args.postgres.database}?sslmode=disable`,
          DATA_SOURCE_USER: args.postgres.user,
          DATA_SOURCE_PASS_FILE: MONITORING_PATHS.postgresPassword,
        },
        secretFiles: [{ path: MONITORING_PATHS.postgresPassword, content: args.postgres.password }],
        ports: [{ name: "metrics", port: 9187 }],
        healthCheck: httpCheck(9187, "/metrics"),
        resources: small,
        replicas: 1,
        runAs: { uid: 65534, gid: 65534 },
        dependsOn: args.dependsOn,
      },
      this,
    );
    const redisExporter = p.deploy(redisExporterSpec(`${name}-redis-exporter`, name, args.images.redisExporter, args.redis, args.dependsOn), this);

    const esExporter = args.elasticsearch
      ? p.deploy(
          {
            name: `${name}-es-exporter`,
            role: "elasticsearch-exporter",
            instance: name,
            image: args.elasticsearch.image,
            // The password is read from its secret file at start, never put in the command line.
            entrypoint: ["sh", "-c", `ES_USERNAME=elastic ES_PASSWORD="$(cat ${MONITORING_PATHS.elasticPassword})" exec /bin/elasticsearch_exporter --es.uri=${args.elasticsearch.url} --es.all`],
            secretFiles: [{ path: MONITORING_PATHS.elasticPassword, content: args.elasticsearch.password }],
            ports: [{ name: "metrics", port: 9114 }],
            healthCheck: httpCheck(9114, "/metrics"),
            resources: small,
            replicas: 1,
            runAs: { uid: 65534, gid: 65534 },
          },
          this,
        )
      : undefined;
    const { password: smtpPassword, ...email } = args.email;
    const alertmanager = p.deploy(
      {
        name: `${name}-alertmanager`,
        role: "alertmanager",
        instance: name,
        image: args.images.alertmanager,
        command: [`--config.file=${MONITORING_PATHS.alertmanagerConfig}`, "--storage.path=/alertmanager", "--cluster.listen-address="],
        configFiles: [
          {
            path: MONITORING_PATHS.alertmanagerConfig,
            content: renderAlertmanagerConfig({
              slackWebhookUrlFile: MONITORING_PATHS.slackWebhookUrl,
              slackChannel: args.slackChannel,
              email: { ...email, ...(smtpPassword !== undefined ? { passwordFile: MONITORING_PATHS.smtpPassword } : {}) },
            }),
          },
        ],
        secretFiles: [
          { path: MONITORING_PATHS.slackWebhookUrl, content: args.slackWebhookUrl },
          ...(smtpPassword !== undefined ? [{ path: MONITORING_PATHS.smtpPassword, content: smtpPassword }] : []),
        ],
        ports: [{ name: "http", port: 9093, hostPort: args.hostPort !== undefined ? args.hostPort + 1 : undefined }],
        volumes: [{ name: "data", mountPath: "/alertmanager", size: "1Gi" }],
        healthCheck: httpCheck(9093, "/-/ready"),
        resources: small,
        replicas: 1,
        runAs: { uid: 65534, gid: 65534 },
      },
      this,
    );

    const target = (s: DeployedService, port: number) => `${s.internalHost(0)}:${port}`;
    const jobs: ScrapeJob[] = [
      { name: "prometheus", targets: ["127.0.0.1:9090"] },
      { name: "node", targets: [target(nodeExporter, 9100)] },
      { name: "postgres", targets: [target(pgExporter, 9187)], labels: { role: "primary" } },
      // Every node through the one exporter, each under its own instance name.
      { name: "redis", targets: redisNodeUris(args.redis.nodes, false), metricsPath: "/scrape", via: target(redisExporter, 9121) },
      { name: "rabbitmq", targets: [args.rabbitmqMetrics] },
      ...(esExporter ? [{ name: "elasticsearch", targets: [target(esExporter, 9114)] }] : []),
      // The ShopFDS services' /metrics; the service component (issue 8) writes its targets here.
      { name: "shopfds-services", targets: [...(args.serviceTargets ?? [])], targetFiles: ["/etc/prometheus/targets/*.json"] },
    ];
    const prometheus = p.deploy(
      {
        name: `${name}-prometheus`,
        role: "prometheus",
        instance: name,
        image: args.images.prometheus,
        command: [`--config.file=${MONITORING_PATHS.prometheusConfig}`, "--storage.tsdb.path=/prometheus", "--storage.tsdb.retention.time=15d", "--web.enable-lifecycle"],
        configFiles: [
          {
            path: MONITORING_PATHS.prometheusConfig,
            content: renderPrometheusConfig({ scrapeIntervalSeconds: ALERT_TIMING.scrapeIntervalSeconds, evaluationIntervalSeconds: ALERT_TIMING.evaluationIntervalSeconds, alertmanagers: [target(alertmanager, 9093)], ruleFiles: [MONITORING_PATHS.rules], jobs }),
          },
          { path: MONITORING_PATHS.rules, content: renderAlertRules() },
        ],
        ports: [{ name: "http", port: 9090, hostPort: args.hostPort }],
        volumes: [{ name: "data", mountPath: "/prometheus", size: args.storageSize }],
        healthCheck: httpCheck(9090, "/-/ready"),
        resources: { cpu: "250m", memory: "512Mi" },
        replicas: 1,
        runAs: { uid: 65534, gid: 65534 },
        dependsOn: [alertmanager],
      },
      this,
    );

    // Grafana with the same dashboards as Kubernetes' (components/monitoring/dashboards.ts), provisioned
    // from files: the Prometheus datasource (uid "prometheus", which the panels name) and a file provider.
    const grafana = p.deploy(
      {
        name: `${name}-grafana`,
        role: "grafana",
        instance: name,
        image: args.images.grafana,
        env: { GF_SECURITY_ADMIN_USER: "admin", GF_SECURITY_ADMIN_PASSWORD__FILE: MONITORING_PATHS.grafanaAdminPassword, GF_ANALYTICS_REPORTING_ENABLED: "false", GF_USERS_ALLOW_SIGN_UP: "false" },
        configFiles: [
          { path: MONITORING_PATHS.grafanaDatasources, content: stringify({ apiVersion: 1, datasources: [{ name: "Prometheus", type: "prometheus", uid: "prometheus", access: "proxy", url: `http://${target(prometheus, 9090)}`, isDefault: true, editable: false }] }) },
          { path: MONITORING_PATHS.grafanaDashboardProvider, content: stringify({ apiVersion: 1, providers: [{ name: "shopfds", folder: "ShopFDS", type: "file", disableDeletion: true, allowUiUpdates: false, options: { path: MONITORING_PATHS.grafanaDashboards } }] }) },
          ...DASHBOARDS.map((d) => ({ path: `${MONITORING_PATHS.grafanaDashboards}/${d.uid}.json`, content: JSON.stringify(grafanaDashboard(d)) })),
        ],
        secretFiles: [{ path: MONITORING_PATHS.grafanaAdminPassword, content: args.grafanaAdminPassword }],
        ports: [{ name: "http", port: 3000, hostPort: args.hostPort !== undefined ? args.hostPort + 2 : undefined }],
        volumes: [{ name: "data", mountPath: "/var/lib/grafana", size: "1Gi" }],
        healthCheck: httpCheck(3000, "/api/health"),
        resources: { cpu: "100m", memory: "256Mi" },
        replicas: 1,
        // The image's own user (grafana, uid 472, group root).
        runAs: { uid: 472, gid: 0 },
        dependsOn: [prometheus],
      },
      this,
    );

    const [prom] = prometheus.instanceEndpoints("http") as [Endpoint];
    const [am] = alertmanager.instanceEndpoints("http") as [Endpoint];
    const [gf] = grafana.instanceEndpoints("http") as [Endpoint];
    this.prometheusUrl = `http://${prom.host}:${prom.port}/`;
    this.alertmanagerUrl = `http://${am.host}:${am.port}/`;
    this.grafanaUrl = `http://${gf.host}:${gf.port}/`;
    this.registerOutputs({ prometheusUrl: this.prometheusUrl, alertmanagerUrl: this.alertmanagerUrl, grafanaUrl: this.grafanaUrl });
  }
}
