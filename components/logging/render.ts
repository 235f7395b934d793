/**
 * Pure renderers for the ELK stack (Elasticsearch 7.17, Logstash, Kibana): the Logstash pipeline that
 * takes the services' ECS JSON logs and indexes them per service and day, the index template and the
 * ILM policy that deletes indices after 30 days (FR-028), the Kibana saved objects for FR-023's
 * dashboard, and the one-shot setup script that applies them. Elasticsearch, Logstash and Kibana cannot
 * run on the build machines; these are tested structurally (see tests/unit/logging-render.test.ts).
 */
import { stringify } from "yaml";
import { isPort, isSafePath, Problems, RULES } from "../validation";

export const LOG_INDEX_PREFIX = "shopfds-logs";
export const ILM_POLICY = "shopfds-logs-30d";
export const WRITER_ROLE = "shopfds_logs_writer";

export interface LogstashPipelineInput {
  /** Elasticsearch URL as Logstash reaches it, e.g. `http://shopfds-prod-es-0.…:9200`. */
  readonly elasticsearchUrl: string;
  /** TCP port for newline-delimited JSON (pino's transport, Filebeat). */
  readonly tcpPort: number;
  /** HTTP port for JSON POSTs. */
  readonly httpPort: number;
  /** Port of a Beats input (Filebeat shipping the pods' ECS lines); none when absent. */
  readonly beatsPort?: number;
  /** PEM file of the CA that signs Elasticsearch's certificate (https URLs). */
  readonly elasticsearchCaFile?: string;
}

export function renderLogstashPipeline(input: LogstashPipelineInput): string {
  const p = new Problems("logstash pipeline");
  p.check(/^https?:\/\/[A-Za-z0-9.-]+:\d+$/.test(input.elasticsearchUrl), "elasticsearchUrl", "must be http(s)://host:port", input.elasticsearchUrl);
  p.rule("tcpPort", RULES.port, input.tcpPort);
  p.check(isPort(input.httpPort) && input.httpPort !== input.tcpPort, "httpPort", "must be a port other than tcpPort", input.httpPort);
  if (input.beatsPort !== undefined) p.check(isPort(input.beatsPort) && input.beatsPort !== input.tcpPort && input.beatsPort !== input.httpPort, "beatsPort", "must be a port other than tcpPort and httpPort", input.beatsPort);
  if (input.elasticsearchCaFile !== undefined) p.check(isSafePath(input.elasticsearchCaFile), "elasticsearchCaFile", "must be an absolute path", input.elasticsearchCaFile);
  p.check(input.elasticsearchCaFile === undefined || input.elasticsearchUrl.startsWith("https://"), "elasticsearchCaFile", "is for an https:// elasticsearchUrl", input.elasticsearchCaFile);
  p.throwIfAny();
  // Filebeat sends each line already parsed (its ndjson parser), with its own kubernetes.* fields.
  const beats = input.beatsPort !== undefined ? `\n  beats { port => ${input.beatsPort} }` : "";
  const tls = input.elasticsearchCaFile !== undefined ? `\n    ssl_enabled => true\n    ssl_certificate_authorities => ["${input.elasticsearchCaFile}"]` : "";
  return `# Rendered by components/logging/render.ts: the services' ECS JSON logs, indexed per service and day.
input {
  tcp { port => ${input.tcpPort} codec => json_lines }
  http { port => ${input.httpPort} codec => json }${beats}
}
filter {
  # pino's ECS format writes dotted keys ("service.name"); make them objects, as ECS maps them.
  de_dot { nested => true }
  if ![service][name] { mutate { add_field => { "[service][name]" => "unknown" } } }
  mutate { lowercase => [ "[service][name]" ] }
  # Lines that are not ECS (no @timestamp) are kept, stamped on arrival and tagged for review.
  if ![ecs][version] { mutate { add_tag => [ "not_ecs" ] } }
  mutate { remove_field => [ "headers", "host" ] }
}
output {
  elasticsearch {
    hosts => ["${input.elasticsearchUrl}"]
    user => "logstash_writer"
    password => "\${LOGSTASH_WRITER_PASSWORD}"${tls}
    index => "${LOG_INDEX_PREFIX}-%{[service][name]}-%{+YYYY.MM.dd}"
    # Retention comes from the index template's ILM policy (delete after 30 days), not rollover.
    ilm_enabled => false
    manage_template => false
  }
}
`;
}

/** What Logstash's user may do: create the log indices and write to them, nothing else. */
export function writerRole(): { cluster: string[]; indices: { names: string[]; privileges: string[] }[] } {
  return { cluster: ["monitor"], indices: [{ names: [`${LOG_INDEX_PREFIX}-*`], privileges: ["create_index", "create_doc", "view_index_metadata"] }] };
}

export function ilmPolicy(): object {
  return { policy: { phases: { hot: { min_age: "0ms", actions: { set_priority: { priority: 100 } } }, delete: { min_age: "30d", actions: { delete: {} } } } } };
}

export function indexTemplate(): object {
  const keyword = { type: "keyword", ignore_above: 1024 };
  return {
    index_patterns: [`${LOG_INDEX_PREFIX}-*`],
    priority: 200,
    template: {
      settings: { number_of_shards: 1, number_of_replicas: 0, "index.lifecycle.name": ILM_POLICY, "index.refresh_interval": "5s" },
      mappings: {
        dynamic: true,
        properties: {
          "@timestamp": { type: "date" },
          message: { type: "text" },
          log: { properties: { level: keyword, logger: keyword } },
          service: { properties: { name: keyword, environment: keyword, version: keyword } },
          trace: { properties: { id: keyword } },
          span: { properties: { id: keyword } },
          error: { properties: { type: keyword, message: { type: "text" }, stack_trace: { type: "text", index: false } } },
          http: { properties: { request: { properties: { method: keyword } }, response: { properties: { status_code: { type: "short" } } } } },
          url: { properties: { path: keyword } },
          event: { properties: { duration: { type: "long" }, dataset: keyword } },
          labels: { properties: { fds_decision: keyword, fds_risk_level: keyword } },
        },
      },
    },
  };
}

const VISUALIZATIONS = [
  { id: "shopfds-error-rate", title: "Error rate (5xx share of requests)", query: "http.response.status_code >= 500", type: "line" },
  { id: "shopfds-response-time", title: "API response time (event.duration, p95)", query: "event.duration:*", type: "line" },
  { id: "shopfds-traffic", title: "Traffic (requests per minute by service)", query: "http.request.method:*", type: "area" },
  { id: "shopfds-fds-block-rate", title: "FDS block rate (decisions)", query: "labels.fds_decision:*", type: "pie" },
] as const;

/** Kibana saved objects (NDJSON for `_import`): the index pattern, four visualizations, the dashboard. */
export function renderKibanaSavedObjects(): string {
  const indexPattern = { type: "index-pattern", id: "shopfds-logs", attributes: { title: `${LOG_INDEX_PREFIX}-*`, timeFieldName: "@timestamp" }, references: [] };
  const visualizations = VISUALIZATIONS.map((v) => ({
    type: "visualization",
    id: v.id,
    attributes: {
      title: v.title,
      visState: JSON.stringify({ title: v.title, type: v.type, params: {}, aggs: [{ id: "1", type: v.id === "shopfds-response-time" ? "percentiles" : "count", schema: "metric", params: v.id === "shopfds-response-time" ? { field: "event.duration", percents: [95] } : {} }, { id: "2", type: v.type === "pie" ? "terms" : "date_histogram", schema: v.type === "pie" ? "segment" : "segment", params: v.type === "pie" ? { field: "labels.fds_decision" } : { field: "@timestamp", interval: "auto" } }] }),
      uiStateJSON: "{}",
      kibanaSavedObjectMeta: { searchSourceJSON: JSON.stringify({ query: { language: "kuery", query: v.query }, filter: [], indexRefName: "kibanaSavedObjectMeta.searchSourceJSON.index" }) },
    },
    references: [{ name: "kibanaSavedObjectMeta.searchSourceJSON.index", type: "index-pattern", id: "shopfds-logs" }],
  }));
  const dashboard = {
    type: "dashboard",
    id: "shopfds-overview",
    attributes: {
      title: "ShopFDS overview (FR-023)",
      panelsJSON: JSON.stringify(VISUALIZATIONS.map((v, i) => ({ panelIndex: String(i + 1), gridData: { x: (i % 2) * 24, y: Math.floor(i / 2) * 15, w: 24, h: 15, i: String(i + 1) }, panelRefName: `panel_${i}` }))),
      timeRestore: true,
      timeFrom: "now-24h",
      timeTo: "now",
      refreshInterval: { pause: false, value: 30000 },
      kibanaSavedObjectMeta: { searchSourceJSON: JSON.stringify({ query: { language: "kuery", query: "" }, filter: [] }) },
    },
    references: VISUALIZATIONS.map((v, i) => ({ name: `panel_${i}`, type: "visualization", id: v.id })),
  };
  return [indexPattern, ...visualizations, dashboard].map((o) => JSON.stringify(o)).join("\n") + "\n";
}

export interface LoggingSetupInput {
  readonly elasticsearchUrl: string;
  /**
   * Where Kibana answers, to import the dashboard once it is up; absent: this script does the
   * Elasticsearch part only, and renderKibanaDashboardsScript runs after Kibana (on Docker, Kibana
   * needs the kibana_system password this script sets before it can answer at all).
   */
  readonly kibanaUrl?: string;
  /** Files (secrets) with the elastic superuser's, kibana_system's and logstash_writer's passwords. */
  readonly elasticPasswordFile: string;
  /** Absent where something else manages kibana_system and the writer (ECK: its own Kibana user, a file realm). */
  readonly kibanaPasswordFile?: string;
  readonly writerPasswordFile?: string;
  /** CA files for https URLs (ECK's self-signed HTTP certificates). */
  readonly elasticsearchCaFile?: string;
  readonly kibanaCaFile?: string;
  /** Where the JSON documents and the NDJSON sit (a ConfigMap / upload). */
  readonly assetsDir: string;
}

/**
 * A POSIX sh script (curl) that, once Elasticsearch answers, sets the built-in kibana_system password,
 * creates the writer role and user for Logstash, and applies the ILM policy and the index template;
 * with `kibanaUrl`, it then waits for Kibana and imports the saved objects. Every call is idempotent
 * (PUT, overwrite), so it is safe to rerun.
 */
export function renderLoggingSetupScript(input: LoggingSetupInput): string {
  const p = new Problems("logging setup");
  p.check(/^https?:\/\/[A-Za-z0-9.-]+:\d+$/.test(input.elasticsearchUrl), "elasticsearchUrl", "must be http(s)://host:port", input.elasticsearchUrl);
  if (input.kibanaUrl !== undefined) p.check(/^https?:\/\/[A-Za-z0-9.-]+:\d+$/.test(input.kibanaUrl), "kibanaUrl", "must be http(s)://host:port", input.kibanaUrl);
  for (const key of ["elasticPasswordFile", "assetsDir"] as const) p.check(isSafePath(input[key]), key, "must be an absolute path", input[key]);
  for (const key of ["kibanaPasswordFile", "writerPasswordFile", "elasticsearchCaFile", "kibanaCaFile"] as const) if (input[key] !== undefined) p.check(isSafePath(input[key]), key, "must be an absolute path", input[key]);
  p.check((input.kibanaPasswordFile === undefined) === (input.writerPasswordFile === undefined), "writerPasswordFile", "must be given together with kibanaPasswordFile (both users are set here, or neither)", input.writerPasswordFile);
  p.throwIfAny();
  const es = input.elasticsearchUrl;
  const esCa = input.elasticsearchCaFile ? ` --cacert '${input.elasticsearchCaFile}'` : "";
  const kbCa = input.kibanaCaFile ? ` --cacert '${input.kibanaCaFile}'` : "";
  const users =
    input.kibanaPasswordFile && input.writerPasswordFile
      ? `call POST /_security/user/kibana_system/_password "{\\"password\\": \\"$(cat '${input.kibanaPasswordFile}')\\"}"
call PUT /_security/role/${WRITER_ROLE} '${JSON.stringify(writerRole())}'
call PUT /_security/user/logstash_writer "{\\"password\\": \\"$(cat '${input.writerPasswordFile}')\\", \\"roles\\": [\\"${WRITER_ROLE}\\"]}"
`
      : "";
  return `#!/bin/sh
# Rendered by components/logging/render.ts: applies the logging setup; safe to run again.
set -eu
ELASTIC="elastic:$(cat '${input.elasticPasswordFile}')"
call() { # method path body-file-or-json
  if [ -f "$3" ]; then data="@$3"; else data="$3"; fi
  curl -fsS${esCa} -u "$ELASTIC" -X "$1" -H 'Content-Type: application/json' "${es}$2" --data-binary "$data" >/dev/null
}
i=0
until curl -fsS${esCa} -u "$ELASTIC" "${es}/_cluster/health?wait_for_status=yellow&timeout=5s" >/dev/null; do
  i=$((i + 1)); [ "$i" -lt 120 ] || { echo "Elasticsearch did not become ready" >&2; exit 1; }; sleep 5
done
${users}call PUT /_ilm/policy/${ILM_POLICY} '${input.assetsDir}/ilm-policy.json'
call PUT /_index_template/${LOG_INDEX_PREFIX} '${input.assetsDir}/index-template.json'
${input.kibanaUrl !== undefined ? kibanaImport(input.kibanaUrl, kbCa, input.assetsDir) : ""}echo "logging setup applied: ILM policy ${ILM_POLICY}, template ${LOG_INDEX_PREFIX}${users ? ", kibana_system password, writer role and user" : ""}${input.kibanaUrl !== undefined ? ", Kibana dashboard" : ""}"
`;
}

/** Waits for Kibana (its status as the elastic user: the route needs a login) and imports the saved objects. */
function kibanaImport(kibanaUrl: string, kbCa: string, assetsDir: string): string {
  return `i=0
until curl -fsS${kbCa} -u "$ELASTIC" "${kibanaUrl}/api/status" >/dev/null; do
  i=$((i + 1)); [ "$i" -lt 120 ] || { echo "Kibana did not become ready" >&2; exit 1; }; sleep 5
done
curl -fsS${kbCa} -u "$ELASTIC" -H 'kbn-xsrf: true' -X POST "${kibanaUrl}/api/saved_objects/_import?overwrite=true" -F "file=@${assetsDir}/saved-objects.ndjson" >/dev/null
`;
}

export interface KibanaDashboardsInput {
  readonly kibanaUrl: string;
  readonly elasticPasswordFile: string;
  readonly kibanaCaFile?: string;
  readonly assetsDir: string;
}

/** The Kibana part of the setup alone (a job after Kibana is healthy): the saved objects, imported. */
export function renderKibanaDashboardsScript(input: KibanaDashboardsInput): string {
  const p = new Problems("kibana dashboards");
  p.check(/^https?:\/\/[A-Za-z0-9.-]+:\d+$/.test(input.kibanaUrl), "kibanaUrl", "must be http(s)://host:port", input.kibanaUrl);
  for (const key of ["elasticPasswordFile", "assetsDir"] as const) p.check(isSafePath(input[key]), key, "must be an absolute path", input[key]);
  if (input.kibanaCaFile !== undefined) p.check(isSafePath(input.kibanaCaFile), "kibanaCaFile", "must be an absolute path", input.kibanaCaFile);
  p.throwIfAny();
  const kbCa = input.kibanaCaFile ? ` --cacert '${input.kibanaCaFile}'` : "";
  return `#!/bin/sh
# Rendered by components/logging/render.ts: imports the Kibana dashboard (FR-023); safe to run again.
set -eu
ELASTIC="elastic:$(cat '${input.elasticPasswordFile}')"
${kibanaImport(input.kibanaUrl, kbCa, input.assetsDir)}echo "Kibana dashboard imported"
`;
}

/** The documents the setup script applies, as files under `dir` (the names the script reads). */
export function loggingAssetFiles(dir: string): { path: string; content: string }[] {
  return [
    { path: `${dir}/ilm-policy.json`, content: JSON.stringify(ilmPolicy()) },
    { path: `${dir}/index-template.json`, content: JSON.stringify(indexTemplate()) },
    { path: `${dir}/saved-objects.ndjson`, content: renderKibanaSavedObjects() },
  ];
}

/**
 * Filebeat's settings on the SC-006 path (a log line searchable within 10 s), set rather than left to
 * the release's defaults (tests/fixtures/upstream/facts.yaml: filestream waits up to `backoff.max` =
 * 10 s at the end of an idle file, and looks for new files every 10 s; the memory queue holds events up
 * to its flush timeout). tests/upstream/budgets.test.ts adds up the path from these and the defaults.
 */
export const FILEBEAT_LATENCY = {
  /** How often new files (a new container's log) are looked for. */
  checkInterval: "1s",
  /** After reaching the end of a file: first wait, and the longest wait, before reading it again. */
  backoffInit: "250ms",
  backoffMax: "1s",
  /** The memory queue hands a batch to the output at this many events or after this long. */
  flushMinEvents: 512,
  flushTimeout: "1s",
} as const;

/** The filestream input options and top-level settings of FILEBEAT_LATENCY, as Filebeat's config keys. */
export function filebeatLatencySettings(): { input: Record<string, string>; top: Record<string, unknown> } {
  return {
    input: { "prospector.scanner.check_interval": FILEBEAT_LATENCY.checkInterval, "backoff.init": FILEBEAT_LATENCY.backoffInit, "backoff.max": FILEBEAT_LATENCY.backoffMax },
    top: { "queue.mem": { "flush.min_events": FILEBEAT_LATENCY.flushMinEvents, "flush.timeout": FILEBEAT_LATENCY.flushTimeout } },
  };
}

export interface FilebeatDockerInput {
  /** The stack whose containers are shipped: their `shopfds-stack` label (DOCKER_LABELS). */
  readonly stack: string;
  /** Logstash's Beats input as Filebeat reaches it, `host:port`. */
  readonly logstash: string;
  /** Where the engine keeps the containers' json-file logs, as mounted in Filebeat's container. */
  readonly containersDir: string;
  /** The engine's socket, as mounted (Filebeat asks it which containers run and their labels). */
  readonly dockerSocket: string;
  /** Port of Filebeat's own HTTP endpoint (its health check), on 127.0.0.1. */
  readonly httpPort: number;
  /** Label names (DOCKER_LABELS), passed in so the renderer needs no platform import. */
  readonly labels: { readonly stack: string; readonly logs: string };
}

/**
 * Filebeat's configuration for a Docker stack (the dev stack with logging on): its Docker autodiscovery
 * follows the containers labelled with this stack and `shopfds-logs: ship`, reads each one's json-file
 * log (the `container` parser takes Docker's envelope off), keeps each ECS JSON line's fields as the
 * event's (`ndjson`), and sends them to Logstash's Beats input: the same pipeline the Kubernetes stacks'
 * Filebeat feeds. Checked every second, so a line is in Elasticsearch within seconds (SC-006).
 */
export function renderFilebeatDockerConfig(input: FilebeatDockerInput): string {
  const p = new Problems("filebeat config");
  p.check(/^[a-z0-9][a-z0-9-]*$/.test(input.stack), "stack", "must be a lower-case name (letters, digits, hyphens)", input.stack);
  p.check(/^[A-Za-z0-9.-]+:\d+$/.test(input.logstash) && isPort(Number(input.logstash.split(":")[1])), "logstash", "must be host:port", input.logstash);
  for (const key of ["containersDir", "dockerSocket"] as const) p.check(isSafePath(input[key]), key, "must be an absolute path", input[key]);
  p.rule("httpPort", RULES.port, input.httpPort);
  for (const key of ["stack", "logs"] as const) p.check(/^[a-z][a-z-]*$/.test(input.labels[key]), `labels.${key}`, "must be a label name without dots (Filebeat turns dots into underscores)", input.labels[key]);
  p.throwIfAny();
  const config = {
    "filebeat.autodiscover": {
      providers: [
        {
          type: "docker",
          host: `unix://${input.dockerSocket}`,
          templates: [
            {
              condition: {
                and: [{ equals: { [`docker.container.labels.${input.labels.stack}`]: input.stack } }, { equals: { [`docker.container.labels.${input.labels.logs}`]: "ship" } }],
              },
              config: [
                {
                  type: "filestream",
                  id: "shopfds-${data.docker.container.id}",
                  paths: [`${input.containersDir}/\${data.docker.container.id}/\${data.docker.container.id}-json.log`],
                  ...filebeatLatencySettings().input,
                  // Docker's json-file envelope off, then the runtime's ECS JSON line as the event's fields.
                  parsers: [{ container: { format: "docker" } }, { ndjson: { target: "", overwrite_keys: true, add_error_key: true } }],
                },
              ],
            },
          ],
        },
      ],
    },
    "output.logstash": { hosts: [input.logstash] },
    ...filebeatLatencySettings().top,
    "http.enabled": true,
    "http.host": "127.0.0.1",
    "http.port": input.httpPort,
  };
  return `# Rendered by components/logging/render.ts: ships the ${input.stack} containers' log lines to Logstash.\n${stringify(config)}`;
}
