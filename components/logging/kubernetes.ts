/**
 * The ELK stack on a Kubernetes stack, through Elastic's operator (ECK): Elasticsearch with security and
 * TLS that ECK manages (its own certificates, the `elastic` user's Secret, Kibana's service account),
 * Kibana, Logstash running the rendered pipeline (a Beats input added), Logstash's writer user and role
 * through ECK's file realm, and log shipping: a Filebeat `Beat` DaemonSet that reads every container log
 * of the stack's namespace, parses the ECS JSON lines and sends them through Logstash into the indices
 * the dashboards read (FR-022). A setup Job applies the ILM policy, the index template and the Kibana
 * saved objects with ECK's `elastic` credentials; an exporter gives the disk alerts their metrics.
 *
 * Filebeat reads the nodes' log files, so it runs as root with host mounts: the one named exception to
 * Pod Security "restricted" among the stack's own pods, in a namespace of its own labelled `privileged`.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { stringify } from "yaml";
import { ECK_STACK_VERSION } from "../versions";
import type { LogStack } from "./stack";
import type { KubernetesPlatform } from "../platform/kubernetes";
import { resourcesToWaitFor } from "../platform/types";
import { quantityToMiB } from "../platform/quantity";
import { filebeatLatencySettings, loggingAssetFiles, renderLoggingSetupScript, renderLogstashPipeline, WRITER_ROLE, writerRole } from "./render";

/** The Elastic Stack version ECK deploys (Logstash on ECK needs 8.7 or later). */
export const ELASTIC_VERSION = ECK_STACK_VERSION;

/** Half of a memory quantity, in MiB (a JVM heap beside the pod's limit). */
const halfMiB = (quantity: string) => Math.floor(quantityToMiB(quantity) / 2);
export const BEATS_PORT = 5044;
const JSON_TCP_PORT = 5045;
const JSON_HTTP_PORT = 8080;

const PATHS = {
  pipelineCa: "/usr/share/logstash/config/es-ca",
  setupDir: "/etc/shopfds-logging",
  elasticDir: "/run/secrets/elastic",
  esCaDir: "/run/secrets/es-ca",
  kbCaDir: "/run/secrets/kb-ca",
} as const;

export interface EckLoggingArgs {
  readonly platform: KubernetesPlatform;
  /** Elasticsearch data nodes (3 in prod: a lost node loses no shard). */
  readonly nodes: number;
  readonly storageSize: string;
  readonly resources: { readonly cpu: string; readonly memory: string };
  /** Memory of Kibana, Logstash (heap: half of it) and each node's Filebeat (config: logging.*Memory). */
  readonly memory: { readonly kibana: string; readonly logstash: string; readonly filebeat: string };
  /** ECK's release: the custom resources wait for its CRDs and webhook. */
  readonly operator: readonly pulumi.Resource[];
  readonly images: { readonly setup: string; readonly exporter: string };
}

export class EckLogging extends pulumi.ComponentResource implements LogStack {
  /** Logstash's Beats and JSON inputs inside the cluster (the contract's `logging.logstash`: its JSON TCP input). */
  declare readonly logstash: { host: string; port: number };
  declare readonly kibanaUrl: string;
  declare readonly elasticsearchUrl: string;
  /** The Service and port Prometheus scrapes the Elasticsearch exporter on. */
  declare readonly exporterService: string;
  declare readonly beatsEndpoint: string;
  /** Where Filebeat runs, and the Logstash it sends to (for the NetworkPolicies). */
  declare readonly shipping: { readonly namespace: string; readonly logstash: string; readonly port: number };
  declare readonly eck: { readonly elasticsearch: string; readonly kibana: string };

  constructor(name: string, args: EckLoggingArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:logging:EckLogging", name, {}, opts);
    const platform = args.platform;
    const ns = platform.namespaceName;
    const labels = { "app.kubernetes.io/instance": name, "app.kubernetes.io/part-of": "shopfds" };
    const objectOpts = (dependsOn: pulumi.Resource[] = [], holdsData = false) => platform.objectOptions(this, [...args.operator, ...dependsOn], holdsData);
    const cr = (apiVersion: string, kind: string, crName: string, spec: pulumi.Input<Record<string, unknown>>, dependsOn: pulumi.Resource[] = [], holdsData = false) =>
      platform.customResource(this, { apiVersion, kind }, crName, spec, { instance: name, dependsOn: [...args.operator, ...dependsOn], holdsData });
    const es = `${name}`;
    const kb = `${name}`;
    const ls = `${name}`;
    const container = (containerName: string, resources: { cpu: string; memory: string }) => ({
      name: containerName,
      resources: { requests: { cpu: resources.cpu, memory: resources.memory }, limits: { memory: resources.memory } },
    });

    // Logstash's user, through ECK's file realm: a basic-auth Secret with its roles, and the role itself.
    const writerPassword = new random.RandomPassword(`${name}-writer-password`, { length: 32, special: false }, { parent: this, additionalSecretOutputs: ["result"] }).result;
    const writerUser = new k8s.core.v1.Secret(
      `${name}-writer-user`,
      { metadata: { name: `${name}-writer-user`, namespace: ns, labels }, type: "kubernetes.io/basic-auth", stringData: { username: "logstash_writer", password: pulumi.secret(writerPassword), roles: WRITER_ROLE } },
      objectOpts(),
    );
    const writerRoles = new k8s.core.v1.Secret(
      `${name}-writer-role`,
      { metadata: { name: `${name}-writer-role`, namespace: ns, labels }, type: "Opaque", stringData: { "roles.yml": stringify({ [WRITER_ROLE]: writerRole() }) } },
      objectOpts(),
    );

    const elasticsearch = cr(
      "elasticsearch.k8s.elastic.co/v1",
      "Elasticsearch",
      es,
      {
        version: ELASTIC_VERSION,
        auth: { fileRealm: [{ secretName: writerUser.metadata.name }], roles: [{ secretName: writerRoles.metadata.name }] },
        nodeSets: [
          {
            name: "data",
            count: args.nodes,
            // No mmap: no privileged sysctl init container is needed (Pod Security "restricted").
            config: { "node.store.allow_mmap": false },
            podTemplate: {
              spec: {
                containers: [container("elasticsearch", args.resources)],
                affinity: {
                  podAntiAffinity: {
                    requiredDuringSchedulingIgnoredDuringExecution: args.nodes > 1 ? [{ topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: { "elasticsearch.k8s.elastic.co/cluster-name": es } } }] : [],
                  },
                },
              },
            },
            volumeClaimTemplates: [
              {
                metadata: { name: "elasticsearch-data" },
                spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: args.storageSize } }, ...(platform.storageClass ? { storageClassName: platform.storageClass } : {}) },
              },
            ],
          },
        ],
      },
      [writerUser, writerRoles],
      true,
    );

    const kibana = cr("kibana.k8s.elastic.co/v1", "Kibana", kb, {
      version: ELASTIC_VERSION,
      count: 1,
      elasticsearchRef: { name: es },
      // Node's heap capped at half the pod (the image sets no cap), as the budget counts it.
      podTemplate: { spec: { containers: [{ ...container("kibana", { cpu: "250m", memory: args.memory.kibana }), env: [{ name: "NODE_OPTIONS", value: `--max-old-space-size=${halfMiB(args.memory.kibana)}` }] }] } },
    }, [elasticsearch]);

    const esUrl = `https://${platform.serviceHost(`${es}-es-http`)}:9200`;
    const caFile = `${PATHS.pipelineCa}/ca.crt`;
    const logstash = cr("logstash.k8s.elastic.co/v1alpha1", "Logstash", ls, {
      version: ELASTIC_VERSION,
      count: 1,
      pipelines: [
        {
          "pipeline.id": "shopfds",
          "config.string": renderLogstashPipeline({ elasticsearchUrl: esUrl, tcpPort: JSON_TCP_PORT, httpPort: JSON_HTTP_PORT, beatsPort: BEATS_PORT, elasticsearchCaFile: caFile }),
        },
      ],
      services: [
        {
          name: "beats",
          service: {
            spec: {
              type: "ClusterIP",
              ports: [
                { name: "beats", port: BEATS_PORT, targetPort: BEATS_PORT, protocol: "TCP" },
                { name: "json-tcp", port: JSON_TCP_PORT, targetPort: JSON_TCP_PORT, protocol: "TCP" },
              ],
            },
          },
        },
      ],
      podTemplate: {
        spec: {
          containers: [
            {
              ...container("logstash", { cpu: "250m", memory: args.memory.logstash }),
              env: [
                { name: "LOGSTASH_WRITER_PASSWORD", valueFrom: { secretKeyRef: { name: `${name}-writer-user`, key: "password" } } },
                // The image's jvm.options fix the heap at 1g and ECK sets none: half the pod's memory instead.
                { name: "LS_JAVA_OPTS", value: `-Xms${halfMiB(args.memory.logstash)}m -Xmx${halfMiB(args.memory.logstash)}m` },
              ],
              volumeMounts: [{ name: "es-ca", mountPath: PATHS.pipelineCa, readOnly: true }],
            },
          ],
          volumes: [{ name: "es-ca", secret: { secretName: `${es}-es-http-certs-public`, items: [{ key: "ca.crt", path: "ca.crt" }] } }],
        },
      },
    }, [elasticsearch, writerUser]);

    // Filebeat: every container log of the stack's namespace, parsed as ECS JSON, to Logstash's Beats input.
    const beatsNamespace = `${ns}-log-shipping`;
    const agentNs = new k8s.core.v1.Namespace(
      beatsNamespace,
      // Filebeat reads /var/log on the node as root: the exception to "restricted", confined to this namespace.
      { metadata: { name: beatsNamespace, labels: { "app.kubernetes.io/part-of": "shopfds", "pod-security.kubernetes.io/enforce": "privileged" } } },
      { parent: this, provider: platform.provider },
    );
    const account = new k8s.core.v1.ServiceAccount(`${name}-filebeat`, { metadata: { name: `${name}-filebeat`, namespace: beatsNamespace, labels } }, { parent: this, provider: platform.provider, dependsOn: [agentNs] });
    const role = new k8s.rbac.v1.ClusterRole(
      `${name}-filebeat`,
      { metadata: { name: `${name}-filebeat`, labels }, rules: [{ apiGroups: [""], resources: ["pods", "namespaces", "nodes"], verbs: ["get", "list", "watch"] }] },
      { parent: this, provider: platform.provider },
    );
    const binding = new k8s.rbac.v1.ClusterRoleBinding(
      `${name}-filebeat`,
      {
        metadata: { name: `${name}-filebeat`, labels },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: `${name}-filebeat` },
        subjects: [{ kind: "ServiceAccount", name: `${name}-filebeat`, namespace: beatsNamespace }],
      },
      { parent: this, provider: platform.provider, dependsOn: [role, account] },
    );
    this.beatsEndpoint = `${platform.serviceHost(`${ls}-ls-beats`)}:${BEATS_PORT}`;
    platform.customResource(
      this,
      { apiVersion: "beat.k8s.elastic.co/v1beta1", kind: "Beat" },
      `${name}-filebeat`,
      {
        type: "filebeat",
        version: ELASTIC_VERSION,
        config: {
          "filebeat.autodiscover": {
            providers: [
              {
                type: "kubernetes",
                node: "${NODE_NAME}",
                templates: [
                  {
                    condition: { equals: { "kubernetes.namespace": ns } },
                    config: [
                      {
                        type: "filestream",
                        id: "shopfds-${data.kubernetes.container.id}",
                        paths: ["/var/log/containers/*-${data.kubernetes.container.id}.log"],
                        "prospector.scanner.symlinks": true,
                        // SC-006: new pods' files found, and idle files read again, within a second.
                        ...filebeatLatencySettings().input,
                        // The runtime writes one ECS JSON object per line: kept as the event's fields.
                        parsers: [{ container: {} }, { ndjson: { target: "", overwrite_keys: true, add_error_key: true, expand_keys: true } }],
                      },
                    ],
                  },
                ],
              },
            ],
          },
          "output.logstash": { hosts: [this.beatsEndpoint] },
          ...filebeatLatencySettings().top,
        },
        daemonSet: {
          podTemplate: {
            spec: {
              serviceAccountName: `${name}-filebeat`,
              automountServiceAccountToken: true,
              dnsPolicy: "ClusterFirstWithHostNet",
              securityContext: { runAsUser: 0 },
              containers: [
                {
                  name: "filebeat",
                  env: [{ name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } }],
                  resources: { requests: { cpu: "100m", memory: args.memory.filebeat }, limits: { memory: args.memory.filebeat } },
                  volumeMounts: [
                    { name: "varlogcontainers", mountPath: "/var/log/containers", readOnly: true },
                    { name: "varlogpods", mountPath: "/var/log/pods", readOnly: true },
                  ],
                },
              ],
              volumes: [
                { name: "varlogcontainers", hostPath: { path: "/var/log/containers" } },
                { name: "varlogpods", hostPath: { path: "/var/log/pods" } },
              ],
            },
          },
        },
      },
      { instance: name, namespace: beatsNamespace, dependsOn: [...args.operator, agentNs, binding, logstash] },
    );

    // The ILM policy, index template and saved objects, applied with ECK's `elastic` credentials.
    platform.runOnce(
      {
        name: `${name}-setup`,
        role: "logging-setup",
        instance: name,
        image: args.images.setup,
        runAs: { uid: 100, gid: 101 },
        command: ["sh", `${PATHS.setupDir}/setup.sh`],
        configFiles: [
          {
            path: `${PATHS.setupDir}/setup.sh`,
            executable: true,
            content: renderLoggingSetupScript({
              elasticsearchUrl: esUrl,
              kibanaUrl: `https://${platform.serviceHost(`${kb}-kb-http`)}:5601`,
              elasticPasswordFile: `${PATHS.elasticDir}/elastic`,
              elasticsearchCaFile: `${PATHS.esCaDir}/ca.crt`,
              kibanaCaFile: `${PATHS.kbCaDir}/ca.crt`,
              assetsDir: PATHS.setupDir,
            }),
          },
          ...loggingAssetFiles(PATHS.setupDir),
        ],
        existingSecretFiles: [
          { secretName: `${es}-es-elastic-user`, keys: ["elastic"], directory: PATHS.elasticDir },
          { secretName: `${es}-es-http-certs-public`, keys: ["ca.crt"], directory: PATHS.esCaDir },
          { secretName: `${kb}-kb-http-certs-public`, keys: ["ca.crt"], directory: PATHS.kbCaDir },
        ],
        resources: { cpu: "50m", memory: "64Mi" },
        dependsOn: [resourcesToWaitFor(es, [elasticsearch, kibana])],
      },
      this,
    );

    // Elasticsearch's disk metrics for the ElasticsearchDiskFull alerts.
    this.exporterService = `${name}-es-exporter`;
    platform.deploy(
      {
        name: this.exporterService,
        role: "elasticsearch-exporter",
        instance: name,
        image: args.images.exporter,
        runAs: { uid: 65534, gid: 65534 },
        // The password is read from ECK's Secret at start, never put on the command line.
        entrypoint: ["sh", "-c", `ES_USERNAME=elastic ES_PASSWORD="$(cat ${PATHS.elasticDir}/elastic)" exec /bin/elasticsearch_exporter --es.uri=${esUrl} --es.ca=${PATHS.esCaDir}/ca.crt --es.all`],
        existingSecretFiles: [
          { secretName: `${es}-es-elastic-user`, keys: ["elastic"], directory: PATHS.elasticDir },
          { secretName: `${es}-es-http-certs-public`, keys: ["ca.crt"], directory: PATHS.esCaDir },
        ],
        ports: [{ name: "metrics", port: 9114 }],
        healthCheck: { command: ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9114/metrics"], intervalSeconds: 15, timeoutSeconds: 5, retries: 3, startPeriodSeconds: 20 },
        resources: { cpu: "50m", memory: "64Mi" },
        replicas: 1,
        stateless: true,
      },
      this,
    );

    this.shipping = { namespace: beatsNamespace, logstash: ls, port: BEATS_PORT };
    this.eck = { elasticsearch: es, kibana: kb };
    this.elasticsearchUrl = esUrl;
    this.logstash = { host: platform.serviceHost(`${ls}-ls-beats`), port: JSON_TCP_PORT };
    this.kibanaUrl = `https://${platform.serviceHost(`${kb}-kb-http`)}:5601/`;
    this.registerOutputs({ logstash: this.logstash, kibanaUrl: this.kibanaUrl });
  }
}
