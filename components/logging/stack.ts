/** The logging concern's shared terms: what the stack needs of its logging, whoever runs it (docker.ts, kubernetes.ts). */
import type * as pulumi from "@pulumi/pulumi";
import type { Endpoint } from "../platform/types";

/** What the stack needs of its logging, on either platform. */
export interface LogStack {
  /** Where services ship their logs (the contract's `logging.logstash`). */
  readonly logstash: Endpoint;
  readonly kibanaUrl: string;
  /** Docker: Elasticsearch for the exporter the monitoring component runs. */
  readonly exporterSource?: { readonly url: string; readonly password: pulumi.Output<string> };
  /** Kubernetes: the exporter's Service, scraped through a ServiceMonitor. */
  readonly exporterService?: string;
  /** Kubernetes: where Filebeat runs and the Logstash it sends to (for the NetworkPolicies). */
  readonly shipping?: { readonly namespace: string; readonly logstash: string; readonly port: number };
  /** Kubernetes: the names of ECK's Elasticsearch and Kibana (their pods carry them as labels). */
  readonly eck?: { readonly elasticsearch: string; readonly kibana: string };
}
