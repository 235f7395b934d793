/**
 * ShopFDS's monitoring on a Kubernetes stack, through the Prometheus Operator that kube-prometheus-stack
 * installs (ClusterOperators): the alert rules as a PrometheusRule (the same renderer as the Docker
 * stack's rules file, promtool-tested), Slack and e-mail routes as an AlertmanagerConfig whose secrets
 * stay in a Secret, ServiceMonitors for the service, the workers, RabbitMQ and the exporters
 * (CloudNativePG's PodMonitor comes with its Cluster), the Redis exporter for the whole cluster, and the
 * ShopFDS Grafana dashboard.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { KubernetesPlatform } from "../platform/kubernetes";
import type { DeployedService, Endpoint } from "../platform/types";
import { redisExporterSpec, redisNodeUris } from "./redis-exporter";
import { alertRuleGroups } from "./render";
import { DASHBOARDS, grafanaDashboard } from "./dashboards";
import { ALERTMANAGER_CONFIG_LABEL, alertmanagerConfigSpec, GRAFANA_DASHBOARD_LABEL, PROMETHEUS_STACK_NAME } from "./prometheus-stack";
import { OPERATORS } from "../platform/operators";
import type { MonitoringStack } from "./stack";

/** A Service of the stack to scrape: selected by its `app.kubernetes.io/name`, on a named port. */
export interface ScrapedService {
  readonly service: string;
  readonly port: string;
  readonly path?: string;
  /** The `job` label the rules read (e.g. `shopfds-services` for HealthCheckFailing); the Service's name otherwise. */
  readonly job?: string;
  /** HTTPS, verified against `ca.crt` of this Secret and for this name (the pods are scraped by IP). */
  readonly tls?: { readonly caSecretName: string; readonly serverName: string };
}

export interface OperatorMonitoringArgs {
  readonly platform: KubernetesPlatform;
  readonly slackWebhookUrl: pulumi.Input<string>;
  readonly slackChannel: string;
  readonly email: { readonly to: string; readonly from: string; readonly smarthost: string; readonly username?: string; readonly password?: pulumi.Input<string>; readonly requireTls: boolean };
  readonly redis: { readonly nodes: readonly Endpoint[]; readonly password: pulumi.Input<string>; readonly exporterImage: string; readonly tls?: { readonly caSecretName: string } };
  readonly scraped: readonly ScrapedService[];
  /** The Prometheus Operator's release: the custom resources wait for its CRDs. */
  readonly operator: readonly pulumi.Resource[];
  readonly dependsOn?: readonly DeployedService[];
}

export class OperatorMonitoring extends pulumi.ComponentResource implements MonitoringStack {
  declare readonly prometheusUrl: string;
  declare readonly alertmanagerUrl: string;
  declare readonly grafanaUrl: string;

  constructor(name: string, args: OperatorMonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:monitoring:OperatorMonitoring", name, {}, opts);
    const platform = args.platform;
    const ns = platform.namespaceName;
    const labels = { "app.kubernetes.io/instance": name, "app.kubernetes.io/part-of": "shopfds" };
    const cr = (kind: string, apiVersion: string, crName: string, spec: pulumi.Input<Record<string, unknown>>, extraLabels: Record<string, string> = {}, dependsOn: pulumi.Resource[] = []) =>
      platform.customResource(this, { apiVersion, kind }, crName, spec, { instance: name, labels: extraLabels, dependsOn: [...args.operator, ...dependsOn] });

    const redisExporter = platform.deploy(redisExporterSpec(`${name}-redis-exporter`, name, args.redis.exporterImage, args.redis, args.dependsOn, args.redis.tls), this);

    cr("PrometheusRule", "monitoring.coreos.com/v1", `${name}-alerts`, { groups: alertRuleGroups("kubernetes") });

    const secret = new k8s.core.v1.Secret(
      `${name}-alerting`,
      {
        metadata: { name: `${name}-alerting`, namespace: ns, labels },
        type: "Opaque",
        stringData: pulumi.secret(pulumi.all({ "slack-webhook-url": args.slackWebhookUrl, ...(args.email.password !== undefined ? { "smtp-password": args.email.password } : {}) })),
      },
      platform.objectOptions(this),
    );
    const { password, ...email } = args.email;
    cr(
      "AlertmanagerConfig",
      "monitoring.coreos.com/v1alpha1",
      `${name}-routes`,
      alertmanagerConfigSpec(
        { slackChannel: args.slackChannel, email },
        { slackWebhookUrl: { name: `${name}-alerting`, key: "slack-webhook-url" }, ...(password !== undefined ? { smtpPassword: { name: `${name}-alerting`, key: "smtp-password" } } : {}) },
      ),
      ALERTMANAGER_CONFIG_LABEL,
      [secret],
    );

    // Every Redis node through the one exporter (`/scrape?target=<node>`), each under its own instance name.
    cr("ServiceMonitor", "monitoring.coreos.com/v1", redisExporter.name, {
      selector: { matchLabels: { "app.kubernetes.io/name": redisExporter.name } },
      endpoints: redisNodeUris(args.redis.nodes, args.redis.tls !== undefined).map((uri) => ({
        port: "metrics",
        path: "/scrape",
        interval: "10s",
        params: { target: [uri] },
        relabelings: [
          { action: "replace", targetLabel: "job", replacement: "redis" },
          { action: "replace", targetLabel: "instance", replacement: uri },
        ],
      })),
    });
    for (const s of args.scraped) {
      cr("ServiceMonitor", "monitoring.coreos.com/v1", s.service, {
        selector: { matchLabels: { "app.kubernetes.io/name": s.service } },
        endpoints: [
          {
            port: s.port,
            path: s.path ?? "/metrics",
            interval: "10s",
            ...(s.tls ? { scheme: "https", tlsConfig: { ca: { secret: { name: s.tls.caSecretName, key: "ca.crt" } }, serverName: s.tls.serverName } } : {}),
            ...(s.job ? { relabelings: [{ action: "replace", targetLabel: "job", replacement: s.job }] } : {}),
          },
        ],
      });
    }

    // One ConfigMap per dashboard (components/monitoring/dashboards.ts), loaded by Grafana's sidecar.
    for (const d of DASHBOARDS)
      new k8s.core.v1.ConfigMap(
        `${name}-${d.uid}`,
        { metadata: { name: `${name}-${d.uid}`, namespace: ns, labels: { ...labels, ...GRAFANA_DASHBOARD_LABEL } }, data: { [`${d.uid}.json`]: JSON.stringify(grafanaDashboard(d)) } },
        platform.objectOptions(this),
      );

    const svc = (suffix: string, port: number) => `http://${PROMETHEUS_STACK_NAME}-${suffix}.${OPERATORS.prometheus.namespace}.svc:${port}/`;
    this.prometheusUrl = svc("prometheus", 9090);
    this.alertmanagerUrl = svc("alertmanager", 9093);
    this.grafanaUrl = svc("grafana", 80);
    this.registerOutputs({ prometheusUrl: this.prometheusUrl, alertmanagerUrl: this.alertmanagerUrl, grafanaUrl: this.grafanaUrl });
  }
}
