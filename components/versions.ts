/**
 * Every version the stacks pin, in one place: the container images (IMAGES) and the operators and charts
 * (OPERATORS). Each was read upstream at this version (tests/fixtures/upstream/facts.yaml); a changed pin
 * makes `make test` name the facts to read again (tests/upstream/pins.ts).
 */

/** Container images. The stack config may override postgres, redis, rabbitmq, flower and the service image. */
export const IMAGES = {
  postgres: "postgres:15.8-bookworm",
  /** CloudNativePG's PostgreSQL 15 operand, the "system" flavour (it carries barman-cloud for the in-tree WAL archiving). */
  postgresOperand: "ghcr.io/cloudnative-pg/postgresql:15.13-system-bookworm",
  redis: "redis:7.0.15-bookworm",
  rabbitmq: "rabbitmq:3.13.7-management",
  flower: "mher/flower:2.0.1",
  mailpit: "axllent/mailpit:v1.21",
  curl: "curlimages/curl:8.7.1",
  elasticsearch: "docker.elastic.co/elasticsearch/elasticsearch:7.17.18",
  logstash: "docker.elastic.co/logstash/logstash:7.17.18",
  kibana: "docker.elastic.co/kibana/kibana:7.17.18",
  filebeat: "docker.elastic.co/beats/filebeat:7.17.18",
  elasticsearchExporter: "quay.io/prometheuscommunity/elasticsearch-exporter:v1.5.0",
  prometheus: "prom/prometheus:v2.42.0",
  alertmanager: "prom/alertmanager:v0.25.0",
  /** The dev stack's Grafana (Kubernetes stacks use the Prometheus stack's). */
  grafana: "grafana/grafana:12.0.0",
  nodeExporter: "prom/node-exporter:v1.5.0",
  postgresExporter: "quay.io/prometheuscommunity/postgres-exporter:v0.12.0",
  redisExporter: "oliver006/redis_exporter:v1.50.0",
} as const;

/** The Elastic Stack version ECK runs on Kubernetes (its images are ECK's choice for that version). */
export const ECK_STACK_VERSION = "8.17.4";

export interface HelmOperator {
  readonly chart: string;
  readonly repo: string;
  /** The chart's version. */
  readonly version: string;
  /** The operator version the chart installs (its appVersion): the CRDs' release. */
  readonly appVersion: string;
  readonly namespace: string;
}

export const OPERATORS = {
  cnpg: { chart: "cloudnative-pg", repo: "https://cloudnative-pg.github.io/charts", version: "0.29.0", appVersion: "1.30.0", namespace: "cnpg-system" },
  eck: { chart: "eck-operator", repo: "https://helm.elastic.co", version: "3.5.0", appVersion: "3.5.0", namespace: "elastic-system" },
  /** Prometheus Operator with Prometheus, Alertmanager, node-exporter, kube-state-metrics and Grafana. */
  prometheus: { chart: "kube-prometheus-stack", repo: "https://prometheus-community.github.io/helm-charts", version: "88.0.0", appVersion: "0.93.0", namespace: "monitoring" },
  rabbitmq: {
    manifest: "https://github.com/rabbitmq/cluster-operator/releases/download/v2.22.3/cluster-operator.yml",
    appVersion: "2.22.3",
    namespace: "rabbitmq-system",
  },
  /**
   * The RabbitMQ Cluster Operator's release manifest holds cert-manager Issuer and Certificate objects
   * for its webhook since v2.22.0 (tests/fixtures/upstream/facts.yaml): cert-manager comes first.
   */
  certManager: { chart: "cert-manager", repo: "https://charts.jetstack.io", version: "v1.16.2", appVersion: "v1.16.2", namespace: "cert-manager" },
} as const satisfies { cnpg: HelmOperator; eck: HelmOperator; prometheus: HelmOperator; certManager: HelmOperator; rabbitmq: { manifest: string; appVersion: string; namespace: string } };
