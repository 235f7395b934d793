/**
 * The ELK stack: Elasticsearch 7.17 with security on (single node), Logstash with the rendered
 * pipeline, Kibana, and two one-shot jobs: the setup (kibana_system's password, the writer role and
 * user, the ILM policy that deletes after 30 days, the index template) once Elasticsearch answers and
 * before Kibana and Logstash start, and the dashboard import once Kibana is healthy. Every password
 * comes from @pulumi/random and reaches the containers only as secret files. Filebeat ships every
 * ShopFDS container's output to Logstash. Optional: `shopfds:logging.enabled`. Docker stacks only
 * (Kubernetes stacks stand on ECK: components/logging/kubernetes.ts).
 *
 * What the images do with these files was read in their source at 7.17.18 and is checked by
 * tests/upstream (facts in tests/fixtures/upstream/facts.yaml): the password reaches Elasticsearch as
 * ELASTIC_PASSWORD, not through the image's `_FILE` handling (which refuses a file whose mode is not 400
 * or 600, and the provider's uploads are 0440); the pipeline replaces the image's own
 * `pipeline/logstash.conf` (the image loads that whole directory as one pipeline); Kibana cannot answer
 * before kibana_system's password is set, so the setup job runs before it, not after.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DOCKER_LABELS } from "../platform/docker";
import type { LogStack } from "./stack";
import { quantityToMiB } from "../platform/quantity";
import { DeployedService, Endpoint, Platform, resourcesToWaitFor, SecretFile } from "../platform/types";
import { loggingAssetFiles, renderFilebeatDockerConfig, renderKibanaDashboardsScript, renderLoggingSetupScript, renderLogstashPipeline } from "./render";

export const LOGGING_PATHS = {
  elasticPassword: "/run/secrets/elastic-password",
  kibanaPassword: "/run/secrets/kibana-system-password",
  writerPassword: "/run/secrets/logstash-writer-password",
  /** The image's own default pipeline file, replaced (the directory is one pipeline: a second file would add its inputs). */
  pipeline: "/usr/share/logstash/pipeline/logstash.conf",
  assets: "/etc/shopfds-logging",
  setupScript: "/etc/shopfds-logging/setup.sh",
  dashboardsScript: "/etc/shopfds-logging/dashboards.sh",
  filebeatConfig: "/usr/share/filebeat/filebeat.yml",
  /** The engine's container logs and socket, as mounted in Filebeat's container. */
  dockerContainers: "/var/lib/docker/containers",
  dockerSocket: "/var/run/docker.sock",
} as const;

/** Logstash's inputs: newline-delimited JSON (the contract's `logging.logstash`), JSON over HTTP, Beats. */
export const LOGSTASH_PORTS = { jsonTcp: 5044, jsonHttp: 8080, beats: 5045 } as const;
const FILEBEAT_HTTP_PORT = 5066;
const KIBANA_MEMORY = "1Gi";

export interface LoggingArgs {
  readonly platform: Platform;
  readonly images: { readonly elasticsearch: string; readonly logstash: string; readonly kibana: string; readonly setup: string; readonly filebeat: string };
  /** The stack whose containers' output Filebeat ships (their `shopfds-stack` label: the platform's name). */
  readonly stack: string;
  readonly storageSize: string;
  readonly resources: { readonly cpu: string; readonly memory: string };
  /** Docker only: Kibana on 127.0.0.1:hostPort, Logstash's JSON TCP input on hostPort + 1. */
  readonly hostPort?: number;
}

export class Logging extends pulumi.ComponentResource implements LogStack {
  /** Where services ship their logs (newline-delimited ECS JSON over TCP). */
  declare readonly logstash: Endpoint;
  declare readonly kibanaUrl: string;
  declare readonly elasticsearch: DeployedService;
  /** For the Elasticsearch exporter: the URL inside the network and the `elastic` password. */
  declare readonly elasticsearchUrl: string;
  declare readonly elasticPassword: pulumi.Output<string>;
  /** Filebeat, shipping the stack's containers' lines to Logstash. */
  declare readonly shipper: DeployedService;

  /** For the Elasticsearch exporter the monitoring component runs (LogStack). */
  get exporterSource(): { url: string; password: pulumi.Output<string> } {
    return { url: this.elasticsearchUrl, password: this.elasticPassword };
  }

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
        // The image's entrypoint (tini, then docker-entrypoint.sh eswrapper) with ELASTIC_PASSWORD read
        // from the secret file first: the image sets it as the bootstrap password. Its own
        // ELASTIC_PASSWORD_FILE handling would refuse the upload (mode 0440, not 400 or 600).
        entrypoint: ["/bin/tini", "--", "sh", "-c", `ELASTIC_PASSWORD="$(cat ${LOGGING_PATHS.elasticPassword})" exec /usr/local/bin/docker-entrypoint.sh eswrapper`],
        env: {
          "discovery.type": "single-node",
          "cluster.name": name,
          "xpack.security.enabled": "true",
          ES_JAVA_OPTS: "-Xms1g -Xmx1g",
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
        shipLogs: false,
      },
      this,
    );
    const esUrl = `http://${this.elasticsearch.internalHost(0)}:9200`;
    this.elasticsearchUrl = esUrl;
    this.elasticPassword = elastic;

    // The logging stack's one-shot jobs: a POSIX sh script in the curl image, as its own user
    // (curlimages/curl: `curl_user`), with the documents it applies beside it.
    const curlJob = (suffix: string, scriptPath: string, script: string, secretFiles: SecretFile[], dependsOn: DeployedService[]) =>
      p.runOnce(
        {
          name: `${name}-${suffix}`,
          role: "logging-setup",
          instance: name,
          image: args.images.setup,
          runAs: { uid: 100, gid: 101 },
          command: ["sh", scriptPath],
          configFiles: [{ path: scriptPath, content: script, executable: true }, ...loggingAssetFiles(LOGGING_PATHS.assets)],
          secretFiles,
          resources: { cpu: "50m", memory: "64Mi" },
          dependsOn,
        },
        this,
      );

    // The setup the stack cannot start without: kibana_system's password (Kibana logs in with it and
    // answers nothing else until it can), Logstash's writer role and user, the ILM policy and template.
    const setup = curlJob(
      "setup",
      LOGGING_PATHS.setupScript,
      renderLoggingSetupScript({
        elasticsearchUrl: esUrl,
        elasticPasswordFile: LOGGING_PATHS.elasticPassword,
        kibanaPasswordFile: LOGGING_PATHS.kibanaPassword,
        writerPasswordFile: LOGGING_PATHS.writerPassword,
        assetsDir: LOGGING_PATHS.assets,
      }),
      [
        { path: LOGGING_PATHS.elasticPassword, content: elastic },
        { path: LOGGING_PATHS.kibanaPassword, content: kibanaSystem },
        { path: LOGGING_PATHS.writerPassword, content: writer },
      ],
      [this.elasticsearch],
    );
    const setupDone = resourcesToWaitFor(`${name}-setup`, [setup]);

    const kibana = p.deploy(
      {
        name: `${name}-kibana`,
        role: "kibana",
        instance: name,
        image: args.images.kibana,
        // The image's own entrypoint (tini) and command, with the password read from the secret file first.
        entrypoint: ["/bin/tini", "--", "sh", "-c", `ELASTICSEARCH_PASSWORD="$(cat ${LOGGING_PATHS.kibanaPassword})" exec /usr/local/bin/kibana-docker`],
        // Node's heap capped at half the container (the image sets no cap: config/node.options has it
        // commented out), so the memory budget does not rest on V8's own sizing.
        env: { ELASTICSEARCH_HOSTS: esUrl, ELASTICSEARCH_USERNAME: "kibana_system", SERVER_NAME: `${name}-kibana`, NODE_OPTIONS: `--max-old-space-size=${Math.floor(quantityToMiB(KIBANA_MEMORY) / 2)}` },
        secretFiles: [{ path: LOGGING_PATHS.kibanaPassword, content: kibanaSystem }],
        ports: [{ name: "http", port: 5601, hostPort: args.hostPort }],
        // /api/status needs a login (status.allowAnonymous is off by default) and answers 503 until Kibana
        // is connected to Elasticsearch: asked as kibana_system, it is healthy only when really up.
        healthCheck: { command: ["sh", "-c", `curl -fsS -u "kibana_system:$(cat ${LOGGING_PATHS.kibanaPassword})" http://127.0.0.1:5601/api/status >/dev/null`], intervalSeconds: 15, timeoutSeconds: 10, retries: 5, startPeriodSeconds: 120 },
        resources: { cpu: "250m", memory: KIBANA_MEMORY },
        replicas: 1,
        runAs: { uid: 1000, gid: 1000 },
        shipLogs: false,
        dependsOn: [this.elasticsearch, setupDone],
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
        configFiles: [
          { path: LOGGING_PATHS.pipeline, content: renderLogstashPipeline({ elasticsearchUrl: esUrl, tcpPort: LOGSTASH_PORTS.jsonTcp, httpPort: LOGSTASH_PORTS.jsonHttp, beatsPort: LOGSTASH_PORTS.beats }) },
        ],
        secretFiles: [{ path: LOGGING_PATHS.writerPassword, content: writer }],
        ports: [
          { name: "json-tcp", port: LOGSTASH_PORTS.jsonTcp, hostPort: args.hostPort !== undefined ? args.hostPort + 1 : undefined },
          { name: "json-http", port: LOGSTASH_PORTS.jsonHttp },
          { name: "beats", port: LOGSTASH_PORTS.beats },
        ],
        healthCheck: { command: ["sh", "-c", "curl -fsS http://127.0.0.1:9600/ >/dev/null"], intervalSeconds: 15, timeoutSeconds: 10, retries: 5, startPeriodSeconds: 90 },
        resources: { cpu: "250m", memory: "1Gi" },
        replicas: 1,
        runAs: { uid: 1000, gid: 1000 },
        shipLogs: false,
        // Its writer user exists before it connects.
        dependsOn: [this.elasticsearch, setupDone],
      },
      this,
    );

    // Log shipping (FR-022): Filebeat follows the stack's containers on the engine and sends their ECS
    // lines to Logstash's Beats input. It reads the engine's files and asks its socket, so it runs as
    // root with both mounted read-only (as the Kubernetes stacks' Filebeat reads the node's logs).
    this.shipper = p.deploy(
      {
        name: `${name}-filebeat`,
        role: "log-shipper",
        instance: name,
        image: args.images.filebeat,
        configFiles: [
          {
            path: LOGGING_PATHS.filebeatConfig,
            content: renderFilebeatDockerConfig({
              stack: args.stack,
              logstash: `${logstash.internalHost(0)}:${LOGSTASH_PORTS.beats}`,
              containersDir: LOGGING_PATHS.dockerContainers,
              dockerSocket: LOGGING_PATHS.dockerSocket,
              httpPort: FILEBEAT_HTTP_PORT,
              labels: DOCKER_LABELS,
            }),
          },
        ],
        hostPaths: [
          { hostPath: LOGGING_PATHS.dockerContainers, mountPath: LOGGING_PATHS.dockerContainers },
          { hostPath: LOGGING_PATHS.dockerSocket, mountPath: LOGGING_PATHS.dockerSocket },
        ],
        // Where it has read to in each log (its registry): kept across restarts, so nothing is sent twice or lost.
        volumes: [{ name: "data", mountPath: "/usr/share/filebeat/data", size: "1Gi" }],
        ports: [],
        healthCheck: { command: ["sh", "-c", `curl -fsS http://127.0.0.1:${FILEBEAT_HTTP_PORT}/ >/dev/null`], intervalSeconds: 15, timeoutSeconds: 5, retries: 3, startPeriodSeconds: 30 },
        resources: { cpu: "100m", memory: "200Mi" },
        replicas: 1,
        runAs: { uid: 0, gid: 0 },
        shipLogs: false,
        dependsOn: [logstash],
      },
      this,
    );

    // The dashboard (FR-023), once Kibana is healthy.
    curlJob(
      "dashboards",
      LOGGING_PATHS.dashboardsScript,
      renderKibanaDashboardsScript({ kibanaUrl: `http://${kibana.internalHost(0)}:5601`, elasticPasswordFile: LOGGING_PATHS.elasticPassword, assetsDir: LOGGING_PATHS.assets }),
      [{ path: LOGGING_PATHS.elasticPassword, content: elastic }],
      [kibana],
    );

    const [ls] = logstash.instanceEndpoints("json-tcp") as [Endpoint];
    const [kb] = kibana.instanceEndpoints("http") as [Endpoint];
    this.logstash = ls;
    this.kibanaUrl = `http://${kb.host}:${kb.port}/`;
    this.registerOutputs({ logstash: this.logstash, kibanaUrl: this.kibanaUrl });
  }
}
