/**
 * Layer 2: budgets computed from what the stacks declare and the upstream defaults they leave alone
 * (tests/fixtures/upstream/facts.yaml, `checkedBy: budget`), printed and checked:
 * - SC-006 on Docker and kind: every hop from a log line to a searchable document ≤ 10 s;
 * - each JVM's, Node's and Redis's memory against its container's limit;
 * - the kind stack's memory (its pods at their autoscalers' maximum, the operators', the Prometheus
 *   stack's) within the runner the e2e-kind job names, after a reserve for kind's control plane.
 * Each has a negative case: the upstream defaults the program overrides put back, which must fail.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { before, describe, it } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { OPERATOR_MEMORY } from "../../components/platform/operators";
import { indexTemplate } from "../../components/logging/render";
import { copy, Declared, DOCKER_CONTAINER, dockerContainers, envOf, loadWorld, mib, ROOT, Snapshot, uploadsOf, World } from "./world";

/** Upstream defaults (facts.yaml ids in brackets), in seconds. */
const DEFAULTS = {
  checkInterval: 10, // [filebeat-filestream-backoff] prospector.scanner.check_interval
  backoffMax: 10, // [filebeat-filestream-backoff] backoff.max
  flushTimeout: 1, // [filebeat-memqueue-flush] queue.mem.flush.timeout (7.x; 10 s in 8.x)
  batchDelay: 0.05, // [logstash-batch-delay] pipeline.batch.delay
  refresh: 1, // [elasticsearch-refresh-interval] index.refresh_interval
};
const SC006_SECONDS = 10;

const seconds = (v: unknown, fallback: number): number => {
  if (v === undefined) return fallback;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(v));
  if (!m) throw new Error(`not a duration: ${String(v)}`);
  return Number(m[1]) * ({ ms: 0.001, s: 1, m: 60 }[m[2] ?? "s"] ?? 1);
};

interface Hop {
  readonly hop: string;
  readonly seconds: number;
  readonly from: string;
}

/** The hops of a line through Filebeat (its config), Logstash and Elasticsearch (the index template). */
function logPath(filebeat: Record<string, any>, input: Record<string, any>, template: any): Hop[] {
  const set = (v: unknown) => (v === undefined ? "upstream default" : "set by the program");
  const harvest = Math.max(seconds(input["prospector.scanner.check_interval"], DEFAULTS.checkInterval), seconds(input["backoff.max"], DEFAULTS.backoffMax));
  return [
    { hop: "Filebeat reads the line (a new file: check_interval; an idle one: backoff.max)", seconds: harvest, from: set(input["backoff.max"]) },
    { hop: "Filebeat's memory queue flushes", seconds: seconds(filebeat["queue.mem"]?.["flush.timeout"], DEFAULTS.flushTimeout), from: set(filebeat["queue.mem"]?.["flush.timeout"]) },
    { hop: "Logstash's batch delay", seconds: DEFAULTS.batchDelay, from: "upstream default" },
    { hop: "Elasticsearch's refresh (index template)", seconds: seconds(template.template?.settings?.["index.refresh_interval"], DEFAULTS.refresh), from: set(template.template?.settings?.["index.refresh_interval"]) },
  ];
}

function dockerFilebeat(s: Snapshot): { config: Record<string, any>; input: Record<string, any> } {
  const [fb] = dockerContainers(s, "docker.elastic.co/beats/filebeat");
  const config = parse(uploadsOf(fb!).find((u) => u.file === "/usr/share/filebeat/filebeat.yml")!.content);
  return { config, input: config["filebeat.autodiscover"].providers[0].templates[0].config[0] };
}

function kindFilebeat(s: Snapshot): { config: Record<string, any>; input: Record<string, any> } {
  const beat = s.resources.find((r) => r.type === "kubernetes:beat.k8s.elastic.co/v1beta1:Beat")!;
  const config = beat.inputs.spec.config;
  return { config, input: config["filebeat.autodiscover"].providers[0].templates[0].config[0] };
}

const total = (hops: Hop[]) => hops.reduce((n, h) => n + h.seconds, 0);

function printHops(title: string, hops: Hop[]): void {
  console.log(`\n${title}: ${total(hops).toFixed(2)} s (SC-006: ≤ ${SC006_SECONDS} s)`);
  for (const h of hops) console.log(`  ${h.seconds.toFixed(2).padStart(6)} s  ${h.hop} (${h.from})`);
}

/** Without the program's Filebeat overrides: the upstream defaults back. */
function withoutOverrides(f: { config: Record<string, any>; input: Record<string, any> }) {
  const c = copy(f);
  for (const k of ["prospector.scanner.check_interval", "backoff.init", "backoff.max"]) delete c.input[k];
  delete c.config["queue.mem"];
  return c;
}

// ---- memory ---------------------------------------------------------------------------------------

interface MemoryLine {
  readonly what: string;
  readonly count: number;
  /** MiB per pod. */
  readonly request: number;
  readonly limit: number;
  readonly from: string;
}

const podMemory = (containers: any[]) => ({
  request: containers.reduce((n, c) => n + (mib(c.resources?.requests?.memory) || mib(c.resources?.limits?.memory) || 0), 0),
  limit: containers.reduce((n, c) => n + (mib(c.resources?.limits?.memory) || Infinity), 0),
});

/** Every pod the kind stack runs at most, with what runs beside it (operators, Prometheus stack, Mailpit). */
export function kindMemory(s: Snapshot, kindNodes: { workers: number; all: number }): MemoryLine[] {
  const lines: MemoryLine[] = [];
  const hpaMax = new Map(s.resources.filter((r) => r.type === "kubernetes:autoscaling/v2:HorizontalPodAutoscaler").map((r) => [r.inputs.spec.scaleTargetRef.name, r.inputs.spec.maxReplicas as number]));
  for (const r of s.resources) {
    const t = r.type.split(":").pop()!;
    if (t === "Deployment" || t === "StatefulSet") {
      const count = hpaMax.get(r.inputs.metadata.name) ?? r.inputs.spec.replicas ?? 1;
      lines.push({ what: `${t} ${r.name}`, count, ...podMemory(r.inputs.spec.template.spec.containers), from: hpaMax.has(r.inputs.metadata.name) ? "its autoscaler's maximum" : "the program" });
    } else if (t === "Cluster" && r.type.includes("cnpg")) {
      lines.push({ what: `CloudNativePG ${r.name}`, count: r.inputs.spec.instances, ...podMemory([{ resources: r.inputs.spec.resources }]), from: "the program" });
    } else if (t === "RabbitmqCluster") {
      lines.push({ what: `RabbitmqCluster ${r.name}`, count: r.inputs.spec.replicas, ...podMemory([{ resources: r.inputs.spec.resources }]), from: "the program" });
    } else if (t === "Elasticsearch") {
      for (const n of r.inputs.spec.nodeSets) lines.push({ what: `Elasticsearch ${r.name}/${n.name}`, count: n.count, ...podMemory(n.podTemplate.spec.containers), from: "the program" });
    } else if (t === "Kibana" || t === "Logstash") {
      lines.push({ what: `${t} ${r.name}`, count: r.inputs.spec.count, ...podMemory(r.inputs.spec.podTemplate.spec.containers), from: "the program" });
    } else if (t === "Beat") {
      lines.push({ what: `Filebeat ${r.name} (a pod per worker node)`, count: kindNodes.workers, ...podMemory(r.inputs.spec.daemonSet.podTemplate.spec.containers), from: "the program" });
    }
  }
  const release = (chart: string) => s.resources.find((r) => r.type === "kubernetes:helm.sh/v3:Release" && r.inputs.chart === chart)?.inputs.values ?? {};
  const fromValues = (what: string, count: number, resources: any, from: string) => lines.push({ what, count, ...podMemory([{ resources }]), from });
  fromValues("CloudNativePG operator", 1, release("cloudnative-pg").resources, "chart values set by the program");
  fromValues("ECK operator", 1, release("eck-operator").resources, "chart values set by the program");
  const cm = release("cert-manager");
  fromValues("cert-manager controller", 1, cm.resources, "chart values set by the program");
  fromValues("cert-manager webhook", 1, cm.webhook?.resources, "chart values set by the program");
  fromValues("cert-manager cainjector", 1, cm.cainjector?.resources, "chart values set by the program");
  fromValues("RabbitMQ Cluster Operator", 1, { requests: { memory: OPERATOR_MEMORY.rabbitmq }, limits: { memory: OPERATOR_MEMORY.rabbitmq } }, "its manifest [rabbitmq-operator-memory]");
  const kps = release("kube-prometheus-stack");
  fromValues("prometheus-operator", 1, kps.prometheusOperator?.resources, "chart values set by the program");
  // Prometheus and Alertmanager each run the operator's config-reloader beside them.
  lines.push({ what: "Prometheus (+ config-reloader)", count: 1, ...podMemory([{ resources: kps.prometheus?.prometheusSpec?.resources }, { resources: kps.prometheusOperator?.prometheusConfigReloader?.resources }]), from: "chart values set by the program" });
  lines.push({ what: "Alertmanager (+ config-reloader)", count: 1, ...podMemory([{ resources: kps.alertmanager?.alertmanagerSpec?.resources }, { resources: kps.prometheusOperator?.prometheusConfigReloader?.resources }]), from: "chart values set by the program" });
  // Grafana with its two sidecars (dashboards and datasources, both on in the chart).
  lines.push({ what: "Grafana (+ 2 sidecars)", count: 1, ...podMemory([{ resources: kps.grafana?.resources }, { resources: kps.grafana?.sidecar?.resources }, { resources: kps.grafana?.sidecar?.resources }]), from: "chart values set by the program" });
  fromValues("kube-state-metrics", 1, kps["kube-state-metrics"]?.resources, "chart values set by the program");
  fromValues("node-exporter (a pod per node, the control plane's too)", kindNodes.all, kps["prometheus-node-exporter"]?.resources, "chart values set by the program");
  const mailpit = parseAllDocuments(readFileSync(path.join(ROOT, "scripts/kind/mailpit.yaml"), "utf8")).map((d) => d.toJSON()).find((d) => d?.kind === "Deployment");
  lines.push({ what: "Mailpit (scripts/kind/mailpit.yaml)", count: mailpit.spec.replicas, ...podMemory(mailpit.spec.template.spec.containers), from: "scripts/kind/mailpit.yaml" });
  return lines;
}

/** What kind's control plane, Docker, the runner's agent and the Pulumi/Node processes are left (an estimate: never measured here). */
const RESERVE_MIB = 3 * 1024;
/** [github-hosted-runner-size]: memory of the standard ubuntu-24.04 runner, public and private repositories. */
const RUNNERS = { "ubuntu-24.04": { public: 16e9 / 2 ** 20, private: 7e9 / 2 ** 20 } } as const;

let world: World;
before(() => {
  world = loadWorld();
});

describe("budgets from the upstream facts", () => {
  it("SC-006 on Docker: a line through Filebeat, Logstash and Elasticsearch is searchable within 10 s, and would not be with Filebeat's defaults", () => {
    const template = indexTemplate();
    const fb = dockerFilebeat(world.dev);
    const hops = logPath(fb.config, fb.input, template);
    printHops("SC-006, Docker (Filebeat → Logstash → Elasticsearch)", hops);
    const direct = hops.slice(2);
    printHops("SC-006, Docker (a service's JSON over TCP → Logstash → Elasticsearch)", direct);
    assert.ok(total(hops) <= SC006_SECONDS, `${total(hops)} s`);
    const defaults = withoutOverrides(fb);
    const worse = logPath(defaults.config, defaults.input, template);
    printHops("negative: Docker with Filebeat's own defaults", worse);
    assert.ok(total(worse) > SC006_SECONDS, "the defaults alone do not meet SC-006, so the overrides are what meets it");
  });

  it("SC-006 on kind: the same path through ECK's Filebeat and Logstash within 10 s, and not with the defaults", () => {
    const fb = kindFilebeat(world.kind);
    const logstash = world.kind.resources.find((r) => r.type === "kubernetes:logstash.k8s.elastic.co/v1alpha1:Logstash")!;
    assert.equal(logstash.inputs.spec.pipelines[0]["pipeline.batch.delay"], undefined, "the batch delay is Logstash's default, as counted");
    const hops = logPath(fb.config, fb.input, indexTemplate());
    printHops("SC-006, kind (ECK Filebeat → Logstash → Elasticsearch)", hops);
    assert.ok(total(hops) <= SC006_SECONDS, `${total(hops)} s`);
    const defaults = withoutOverrides(fb);
    assert.ok(total(logPath(defaults.config, defaults.input, indexTemplate())) > SC006_SECONDS);
  });

});

/** Each JVM's, Node's and Redis's memory beside its container's limit (MiB), Docker and kind. */
function heapRows(world: World): { what: string; process: number; limit: number; from: string }[] {
  const rows: { what: string; process: number; limit: number; from: string }[] = [];
  const xmx = (opts: string | undefined) => {
    const m = /-Xmx(\d+)([mMgG])/.exec(opts ?? "");
    return m ? Number(m[1]) * (/g/i.test(m[2]!) ? 1024 : 1) : undefined;
  };
  for (const c of world.dev.resources.filter((r) => r.type === DOCKER_CONTAINER)) {
    const env = envOf(c);
    if (env.ES_JAVA_OPTS) rows.push({ what: `${c.name} (Elasticsearch heap)`, process: xmx(env.ES_JAVA_OPTS)!, limit: c.inputs.memory, from: "ES_JAVA_OPTS" });
    if (String(c.inputs.image).includes("logstash")) rows.push({ what: `${c.name} (Logstash heap)`, process: xmx(env.LS_JAVA_OPTS) ?? 1024, limit: c.inputs.memory, from: env.LS_JAVA_OPTS ? "LS_JAVA_OPTS" : "jvm.options [logstash-default-heap]" });
    const node = /--max-old-space-size=(\d+)/.exec(env.NODE_OPTIONS ?? "");
    if (String(c.inputs.image).includes("kibana")) rows.push({ what: `${c.name} (Kibana's Node heap)`, process: node ? Number(node[1]) : Infinity, limit: c.inputs.memory, from: node ? "NODE_OPTIONS" : "no cap set" });
    const redisConf = uploadsOf(c).find((u) => u.file.endsWith("redis.conf"));
    const maxmemory = /^maxmemory (\d+)mb$/m.exec(redisConf?.content ?? "");
    if (maxmemory) rows.push({ what: `${c.name} (Redis maxmemory)`, process: Number(maxmemory[1]) * 1e6 / 2 ** 20, limit: c.inputs.memory, from: "redis.conf" });
  }
  for (const r of world.kind.resources) {
    const t = r.type.split(":").pop();
    if (t === "Elasticsearch") for (const n of r.inputs.spec.nodeSets) rows.push({ what: `kind ${r.name} (Elasticsearch heap: half, [elasticsearch-auto-heap])`, process: mib(n.podTemplate.spec.containers[0].resources.limits.memory) / 2, limit: mib(n.podTemplate.spec.containers[0].resources.limits.memory), from: "ES's own sizing" });
    if (t === "Logstash" || t === "Kibana") {
      const c = r.inputs.spec.podTemplate.spec.containers[0];
      const opts = (c.env ?? []).map((e: any) => e.value).join(" ");
      const heap = t === "Logstash" ? (xmx(opts) ?? 1024) : Number(/--max-old-space-size=(\d+)/.exec(opts)?.[1] ?? Infinity);
      rows.push({ what: `kind ${r.name} (${t} heap)`, process: heap, limit: mib(c.resources.limits.memory), from: t === "Logstash" ? "LS_JAVA_OPTS" : "NODE_OPTIONS" });
    }
  }
  return rows;
}

describe("budgets from the upstream facts: memory", () => {
  it("every JVM, Node and Redis fits its container's memory limit with room (heap at most 3/4 of it), Docker and kind; Logstash's default heap would not", () => {
    const rows = heapRows(world);
    console.log("\nmemory: the process's heap or data limit against its container's limit (MiB)");
    for (const r of rows) console.log(`  ${r.process.toFixed(0).padStart(6)} / ${String(r.limit).padStart(5)}  ${r.what} (${r.from})`);
    assert.ok(rows.length >= 10, `${rows.length} rows`);
    const over = rows.filter((r) => !(r.process <= r.limit * 0.75));
    assert.deepEqual(over.map((r) => r.what), []);
    // Negative: without LS_JAVA_OPTS, Logstash's jvm.options heap (1g) in its 1Gi Docker container.
    const defaults = copy(world);
    const ls = dockerContainers(defaults.dev, "docker.elastic.co/logstash/logstash")[0]!;
    ls.inputs.envs = ls.inputs.envs.filter((e: string) => !e.startsWith("LS_JAVA_OPTS="));
    assert.deepEqual(heapRows(defaults).filter((r) => !(r.process <= r.limit * 0.75)).map((r) => r.what), ["shopfds-dev-logging-logstash-0 (Logstash heap)"]);
  });
});

describe("budgets from the upstream facts: the kind runner", () => {
  it("the kind stack (its pods at their autoscalers' maximum, the operators, the Prometheus stack) fits the runner the e2e-kind job names", () => {
    const cluster = parse(readFileSync(path.join(ROOT, "scripts/kind/cluster.yaml"), "utf8"));
    const nodes = { all: cluster.nodes.length, workers: cluster.nodes.filter((n: any) => n.role === "worker").length };
    const lines = kindMemory(world.kind, nodes);
    const sum = (k: "request" | "limit") => lines.reduce((n, l) => n + l.count * l[k], 0);
    const runsOn = world.workflow.jobs["e2e-kind"]["runs-on"] as keyof typeof RUNNERS;
    const runner = RUNNERS[runsOn];
    assert.ok(runner, `the e2e-kind job runs on ${String(runsOn)}, whose size facts.yaml records`);
    console.log(`\nkind stack memory on ${runsOn} (MiB; count × request / limit)`);
    for (const l of lines) console.log(`  ${String(l.count).padStart(2)} × ${l.request.toFixed(0).padStart(5)} / ${l.limit.toFixed(0).padStart(5)}  ${l.what} (${l.from})`);
    const budget = runner.public - RESERVE_MIB;
    console.log(`  requests ${sum("request").toFixed(0)}, limits ${sum("limit").toFixed(0)}; runner ${runner.public.toFixed(0)} (public repository) − reserve ${RESERVE_MIB} = ${budget.toFixed(0)}; a private repository's ${runner.private.toFixed(0)} − reserve = ${(runner.private - RESERVE_MIB).toFixed(0)}`);
    assert.ok(lines.every((l) => Number.isFinite(l.limit)), `every pod has a memory limit: ${lines.filter((l) => !Number.isFinite(l.limit)).map((l) => l.what).join(", ")}`);
    assert.ok(sum("limit") <= budget, `limits ${sum("limit")} MiB within ${budget} MiB`);
    // Negative: the Prometheus stack at the chart's defaults (no limits) cannot be budgeted at all.
    const unbounded = copy(world.kind);
    delete unbounded.resources.find((r: Declared) => r.type === "kubernetes:helm.sh/v3:Release" && r.inputs.chart === "kube-prometheus-stack")!.inputs.values.prometheus.prometheusSpec.resources;
    assert.ok(kindMemory(unbounded, nodes).some((l) => !Number.isFinite(l.limit)));
    // Negative: production sizes on the kind runner do not fit.
    assert.ok(sum("limit") + 8 * 1024 > budget, "the budget can fail: 8 GiB more (ECK's defaults for three Elastic pods and a production Prometheus) would not fit");
  });
});
