/** The monitoring concern's shared terms: what the stack needs of its monitoring, whoever runs it (docker.ts, kubernetes.ts). */
export interface MonitoringStack {
  readonly prometheusUrl: string;
  readonly alertmanagerUrl: string;
  /** Kubernetes: Grafana (the Prometheus stack's). */
  readonly grafanaUrl?: string;
}

/** Where critical alerts are mailed, and through which relay. */
export interface AlertEmail {
  readonly to: string;
  readonly from: string;
  readonly smarthost: string;
  readonly username?: string;
  readonly password?: import("@pulumi/pulumi").Input<string>;
  readonly requireTls: boolean;
}
