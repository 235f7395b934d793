/**
 * The ELK stack: Elasticsearch 7.17 with security on (single node), Logstash with the rendered
 * pipeline, Kibana, and a one-shot setup job that applies the ILM policy (delete after 30 days), the
 * index template, the writer role and user, and the Kibana dashboard. Every password comes from
 * @pulumi/random and reaches the containers only as secret files. Optional: `shopfds:logging.enabled`.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DeployedService, Endpoint, Platform } from "../platform/types";
import { loggingAssetFiles, renderLoggingSetupScript, renderLogstashPipeline } from "./render";

export const LOGGING_PATHS = {
  elasticPassword: "/run/secrets/elastic-password",
  kibanaPassword: "/run/secrets/kibana-system-password",
  writerPassword: "/run/secrets/logstash-writer-password",
  pipeline: "/usr/share/logstash/pipeline/shopfds.conf",
  assets: "/etc/shopfds-logging",
  setupScript: "/etc/shopfds-logging/setup.sh",
} as const;

export interface LoggingArgs {
  readonly platform: Platform;
  readonly images: { readonly elasticsearch: string; readonly logstash: string; readonly kibana: string; readonly setup: string };
  readonly storageSize: string;
  readonly resources: { readonly cpu: string; readonly memory: string };
  /** Docker only: Kibana on 127.0.0.1:hostPort, Logstash's JSON TCP input on hostPort + 1. */
  readonly hostPort?: number;
}

export class Logging extends pulumi.ComponentResource {
  /** Where services ship their logs (newline-delimited ECS JSON over TCP). */
  declare readonly logstash: Endpoint;
  declare readonly kibanaUrl: string;
  declare readonly elasticsearch: DeployedService;
  /** For the Elasticsearch exporter: the URL inside the network and the `elastic` password. */
  declare readonly elasticsearchUrl: string;
  declare readonly elasticPassword: pulumi.Output<string>;

  constructor(name: string, args: LoggingArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:logging:Logging", name, {}, opts);
    const password = (purpose: string) =>
      new random.RandomPassword(`${name}-${purpose}-password`, { length: 32, special: false }, { parent: this, additionalSecretOutputs: ["result"] }).result;
    const elastic = password("elastic");
    const kibanaSystem = password("kibana-system");
    const writer = password("logstash-writer");
    const p = args.platform;

    this.elasticsearch = p.deploy(
      {
        name: `${name}-es`,
        role: "elasticsearch",
        instance: name,
        image: args.images.elasticsearch,
        env: {
          "discovery.type": "single-node",
          "cluster.name": name,
          "xpack.security.enabled": "true",
          ES_JAVA_OPTS: "-Xms1g -Xmx1g",
          // The image reads the bootstrap password from this file.
          ELASTIC_PASSWORD_FILE: LOGGING_PATHS.elasticPassword,
        },
        secretFiles: [{ path: LOGGING_PATHS.elasticPassword, content: elastic }],
        ports: [{ name: "http", port: 9200 }],
        volumes: [{ name: "data", mountPath: "/usr/share/elasticsearch/data", size: args.storageSize }],
        healthCheck: {
          command: ["sh", "-c", `curl -fsS -u "elastic:$(cat ${LOGGING_PATHS.elasticPassword})" "http://127.0.0.1:9200/_cluster/health?wait_for_status=yellow&timeout=5s" >/dev/null`],
          intervalSeconds: 15,
          timeoutSeconds: 10,
          retries: 5,
          startPeriodSeconds: 90,
        },
        resources: args.resources,
        replicas: 1,
        runAs: { uid: 1000, gid: 1000 },
      },
      this,
    );
    const esUrl = `http://${this.elasticsearch.internalHost(0)}:9200`;
    this.elasticsearchUrl = esUrl;
    this.elasticPassword = elastic;

    const kibana = p.deploy(
      {
        name: `${name}-kibana`,
        role: "kibana",
        instance: name,
        image: args.images.kibana,
        entrypoint: ["sh", "-c", `ELASTICSEARCH_PASSWORD="$(cat ${LOGGING_PATHS.kibanaPassword})" exec /usr/local/bin/kibana-docker`],
        env: { ELASTICSEARCH_HOSTS: esUrl, ELASTICSEARCH_USERNAME: "kibana_system", SERVER_NAME: `${name}-kibana` },
        secretFiles: [{ path: LOGGING_PATHS.kibanaPassword, content: kibanaSystem }],
        ports: [{ name: "http", port: 5601, hostPort: args.hostPort }],
        healthCheck: { command: ["sh", "-c", "curl -fsS http://127.0.0.1:5601/api/status >/dev/null"], intervalSeconds: 15, timeoutSeconds: 10, retries: 5, startPeriodSeconds: 120 },
        resources: { cpu: "250m", memory: "1Gi" },
        replicas: 1,
        runAs: { uid: 1000, gid: 1000 },
        dependsOn: [this.elasticsearch],
      },
      this,
    );

    const logstash = p.deploy(
      {
        name: `${name}-logstash`,
        role: "logstash",
        instance: name,
        image: args.images.logstash,
        entrypoint: ["sh", "-c", `LOGSTASH_WRITER_PASSWORD="$(cat ${LOGGING_PATHS.writerPassword})" exec /usr/local/bin/docker-entrypoint`],
        env: { "xpack.monitoring.enabled": "false", LS_JAVA_OPTS: "-Xms512m -Xmx512m" },
        configFiles: [{ path: LOGGING_PATHS.pipeline, content: renderLogstashPipeline({ elasticsearchUrl: esUrl, tcpPort: 5044, httpPort: 8080 }) }],
        secretFiles: [{ path: LOGGING_PATHS.writerPassword, content: writer }],
        ports: [
          { name: "json-tcp", port: 5044, hostPort: args.hostPort !== undefined ? args.hostPort + 1 : undefined },
          { name: "json-http", port: 8080 },
        ],
        healthCheck: { command: ["sh", "-c", "curl -fsS http://127.0.0.1:9600/ >/dev/null"], intervalSeconds: 15, timeoutSeconds: 10, retries: 5, startPeriodSeconds: 90 },
        resources: { cpu: "250m", memory: "1Gi" },
        replicas: 1,
        runAs: { uid: 1000, gid: 1000 },
        dependsOn: [this.elasticsearch],
      },
      this,
    );

    const kibanaInside = `http://${kibana.internalHost(0)}:5601`;
    p.runOnce(
      {
        name: `${name}-setup`,
        role: "logging-setup",
        instance: name,
        image: args.images.setup,
        // The image's own user (curlimages/curl: `curl_user`, 100:101).
        runAs: { uid: 100, gid: 101 },
        command: ["sh", LOGGING_PATHS.setupScript],
        configFiles: [
          {
            path: LOGGING_PATHS.setupScript,
            content: renderLoggingSetupScript({
              elasticsearchUrl: esUrl,
              kibanaUrl: kibanaInside,
              elasticPasswordFile: LOGGING_PATHS.elasticPassword,
              kibanaPasswordFile: LOGGING_PATHS.kibanaPassword,
              writerPasswordFile: LOGGING_PATHS.writerPassword,
              assetsDir: LOGGING_PATHS.assets,
            }),
            executable: true,
          },
          ...loggingAssetFiles(LOGGING_PATHS.assets),
        ],
        secretFiles: [
          { path: LOGGING_PATHS.elasticPassword, content: elastic },
          { path: LOGGING_PATHS.kibanaPassword, content: kibanaSystem },
          { path: LOGGING_PATHS.writerPassword, content: writer },
        ],
        resources: { cpu: "50m", memory: "64Mi" },
        dependsOn: [this.elasticsearch, kibana],
      },
      this,
    );

    const [ls] = logstash.instanceEndpoints("json-tcp") as [Endpoint];
    const [kb] = kibana.instanceEndpoints("http") as [Endpoint];
    this.logstash = ls;
    this.kibanaUrl = `http://${kb.host}:${kb.port}/`;
    this.registerOutputs({ logstash: this.logstash, kibanaUrl: this.kibanaUrl });
  }
}
