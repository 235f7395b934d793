/**
 * Layer 3: the services' metrics against the test stack: the router's counts and the replica's lag and
 * state appear as Prometheus series (counted once across scrapes), beside HTTP, FDS and job series,
 * served by the /metrics handler.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import { Database } from "../../runtime/db/router";
import { ServiceMetrics } from "../../runtime/observability/metrics";
import { loadStackOutputs } from "../../runtime/outputs";
import { alertRuleGroups } from "../../components/monitoring/render";
import { profile, rabbitOptions } from "../../scripts/local-stack/stack";
import { until } from "../support/databases";

/** The metric names an alert rule set reads with `prefix`, histogram suffixes folded into their family. */
function ruleMetrics(prefix: string): string[] {
  const exprs = [...alertRuleGroups("standalone"), ...alertRuleGroups("kubernetes")].flatMap((g) => g.rules.map((r) => r.expr));
  return [...new Set(exprs.flatMap((e) => e.match(new RegExp(`\\b${prefix}[a-z0-9_]+`, "g")) ?? []).map((n) => n.replace(/_(bucket|count|sum)$/, "")))].sort();
}
/** The families an exposition text declares (`# TYPE name …`). */
const families = (text: string) => new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));

let db: Database;
let metrics: ServiceMetrics;
/** The value of a series in the exposition text; labels match in any order. */
const value = (text: string, series: string) => {
  const parse = (s: string) => {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$/.exec(s);
    if (!m) return "";
    return `${m[1]}|${(m[2] ?? "").split(/,(?=[a-z_]+=)/).filter(Boolean).sort().join(",")}`;
  };
  const wanted = parse(series);
  const line = text.split("\n").find((l) => !l.startsWith("#") && l.includes(" ") && parse(l.slice(0, l.lastIndexOf(" "))) === wanted);
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
};

before(async () => {
  db = await Database.connect((await loadStackOutputs()).postgres);
  metrics = new ServiceMetrics({ service: "metrics-test", db, defaultMetrics: false });
});

after(async () => {
  await db.close();
});

describe("service metrics", () => {
  it("exports the router's reads by target, writes, and each replica's state and lag, counted once across scrapes", async () => {
    for (let i = 0; i < 10; i++) await db.query("SELECT $1::int AS n", [i]);
    await db.query("SELECT set_config('shopfds.metrics_test', '1', false)");
    const first = await metrics.registry.metrics();
    const replica = db.stats().replicas[0]!.name;
    assert.equal(value(first, 'shopfds_db_reads_total{target="replica",service="metrics-test"}'), db.stats().reads.replicas);
    assert.ok((value(first, 'shopfds_db_reads_total{target="replica",service="metrics-test"}') ?? 0) >= 10);
    assert.equal(value(first, 'shopfds_db_writes_total{service="metrics-test"}'), 1);
    assert.equal(value(first, `shopfds_db_replica_up{replica="${replica}",service="metrics-test"}`), 1);
    assert.ok((value(first, `shopfds_db_replica_lag_seconds{replica="${replica}",service="metrics-test"}`) ?? -1) >= 0);
    const second = await metrics.registry.metrics();
    assert.equal(value(second, 'shopfds_db_writes_total{service="metrics-test"}'), 1, "a second scrape adds nothing");
  });

  it("records HTTP requests, FDS evaluations and jobs, and serves them on /metrics", async () => {
    metrics.observeHttp("POST", "/orders", 201, 0.012);
    metrics.observeHttp("POST", "/orders", 500, 0.2);
    metrics.observeEvaluation({ score: 100, level: "high", decision: "block", factors: [], elapsedMs: 3 });
    metrics.observeJob("shopfds.send_order_confirmation", "succeeded", 0.12);
    const server = createServer(metrics.handler());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/metrics`);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      assert.equal(value(text, 'shopfds_http_requests_total{method="POST",route="/orders",status_code="500",service="metrics-test"}'), 1);
      assert.equal(value(text, 'shopfds_http_request_duration_seconds_bucket{le="0.025",method="POST",route="/orders",status_code="201",service="metrics-test"}'), 1);
      assert.equal(value(text, 'shopfds_fds_evaluations_total{level="high",decision="block",service="metrics-test"}'), 1);
      assert.equal(value(text, 'shopfds_jobs_total{task="shopfds.send_order_confirmation",outcome="succeeded",service="metrics-test"}'), 1);
    } finally {
      server.close();
    }
  });

  it("exports every shopfds_ series the alert rules read (a renamed metric or a typo in a rule fails here)", async () => {
    const all = new ServiceMetrics({ service: "rules-test", db, blacklist: { stats: () => ({ checks: 0, hits: 0, fallbacks: 0 }) }, defaultMetrics: false });
    all.observeHttp("GET", "/x", 200, 0.01);
    const exported = families(await all.registry.metrics());
    const wanted = ruleMetrics("shopfds_");
    assert.ok(wanted.length >= 8, `rules read ${wanted.join(", ")}`);
    assert.deepEqual(wanted.filter((n) => !exported.has(n)), []);
    assert.ok(!exported.has("shopfds_no_such_metric"), "the check can fail");
  });
});

describe("RabbitMQ's own metrics (the test stack's broker, its Prometheus plugin as the stacks configure it)", () => {
  it("serves every rabbitmq_ series the alert rules read, per queue", async () => {
    const port = rabbitOptions(profile("test")).firstPort + 2;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const exported = families(text);
    const wanted = ruleMetrics("rabbitmq_");
    assert.ok(wanted.includes("rabbitmq_identity_info") && wanted.includes("rabbitmq_queue_consumers"), wanted.join(", "));
    assert.deepEqual(wanted.filter((n) => !exported.has(n)), []);
    // Per-object series: the rules select queues by name.
    assert.match(text, /^rabbitmq_queue_consumers\{[^}]*queue="[^"]+"/m);
  });
});


describe("Redis metrics (every node through the test stack's redis_exporter, as the stacks scrape it)", () => {
  it("Prometheus has each of the six nodes under its own instance, up, with its maxmemory and role, and every redis_ series the rules read", async () => {
    const prometheus = (await loadStackOutputs()).monitoring!.prometheusUrl;
    const query = async (q: string) =>
      ((await (await fetch(`${prometheus}api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
    const nodes = (await loadStackOutputs()).redis.nodes.map((n) => `redis://${n.host}:${n.port}`).sort();
    // The first scrape comes within one interval of the stack's start.
    await until("every node scraped", 30_000, async () => (await query('redis_up{job="redis"} == 1')).length === nodes.length);
    assert.deepEqual((await query('redis_up{job="redis"}')).map((r) => r.metric.instance).sort(), nodes);
    const maxmemory = await query('redis_memory_max_bytes{job="redis"}');
    assert.deepEqual(maxmemory.map((r) => r.metric.instance).sort(), nodes, "RedisMemoryNearMax can see every master, not only the first node");
    assert.ok(maxmemory.every((r) => Number(r.value[1]) > 0), "each node reports its maxmemory");
    const roles = await query('redis_instance_info{job="redis"}');
    assert.deepEqual(roles.map((r) => r.metric.role).sort(), ["master", "master", "master", "slave", "slave", "slave"]);
    // The rules' redis_ series (RedisConnectionsHigh, RedisClusterSlotsFailing, RedisMasterWithoutReplica…).
    for (const name of ruleMetrics("redis_")) assert.ok((await query(`count(${name}{job="redis"})`)).length === 1, `${name} is scraped`);
  });
});
