/** The logging concern: the ELK stack for a platform, its own containers on Docker or ECK on Kubernetes. */
import type * as pulumi from "@pulumi/pulumi";
import { KubernetesPlatform } from "../platform/kubernetes";
import type { Endpoint, Platform } from "../platform/types";
import { IMAGES } from "../versions";
import { Logging } from "./docker";
import { EckLogging } from "./kubernetes";
import type { LogStack } from "./stack";

export type { LogStack };

export interface LoggingArgs {
  readonly platform: Platform;
  /** The stack's name: Docker's Filebeat ships the containers labelled with it. */
  readonly stack: string;
  readonly storageSize: string;
  readonly resources: { readonly cpu: string; readonly memory: string };
  /** Docker: Kibana on 127.0.0.1:hostPort, Logstash's JSON input on hostPort + 1. */
  readonly hostPort?: number;
  /** Kubernetes: Elasticsearch nodes, the memory of Kibana, Logstash and Filebeat, and ECK's release. */
  readonly kubernetes?: { readonly nodes: number; readonly memory: { readonly kibana: string; readonly logstash: string; readonly filebeat: string }; readonly operator: readonly pulumi.Resource[] };
}

export function declareLogging(name: string, args: LoggingArgs): LogStack {
  if (args.platform instanceof KubernetesPlatform) {
    if (!args.kubernetes) throw new Error(`${name}: a Kubernetes logging stack needs its nodes, memory and operator (LoggingArgs.kubernetes)`);
    return new EckLogging(name, {
      platform: args.platform,
      nodes: args.kubernetes.nodes,
      storageSize: args.storageSize,
      resources: args.resources,
      memory: args.kubernetes.memory,
      operator: args.kubernetes.operator,
      images: { setup: IMAGES.curl, exporter: IMAGES.elasticsearchExporter },
    });
  }
  return new Logging(name, {
    platform: args.platform,
    images: { elasticsearch: IMAGES.elasticsearch, logstash: IMAGES.logstash, kibana: IMAGES.kibana, setup: IMAGES.curl, filebeat: IMAGES.filebeat },
    stack: args.stack,
    storageSize: args.storageSize,
    resources: args.resources,
    hostPort: args.hostPort,
  });
}
