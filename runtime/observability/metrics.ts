/**
 * The services' Prometheus metrics (prom-client): the series the alert rules and dashboards use.
 *
 *   shopfds_http_requests_total{method,route,status_code}            error rate (5xx share)
 *   shopfds_http_request_duration_seconds{method,route,status_code}  response time
 *   shopfds_fds_evaluations_total{level,decision}                    FDS block rate
 *   shopfds_fds_evaluation_duration_seconds                          SC-002 (≤ 100 ms)
 *   shopfds_blacklist_checks_total, _hits_total, _fallbacks_total    Redis → PostgreSQL fallbacks
 *   shopfds_db_reads_total{target}, shopfds_db_writes_total, shopfds_db_fallbacks_total
 *   shopfds_db_replica_up{replica}, shopfds_db_replica_lag_seconds{replica}
 *   shopfds_jobs_total{task,outcome}, shopfds_job_duration_seconds{task}
 *
 * Counters kept by the runtime objects themselves (router, blacklist) are read at scrape time.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Database } from "../db/router";
import type { Blacklist } from "../fds/blacklist";
import type { Evaluation } from "../fds/evaluate";

/** What a task run can end in (shopfds_jobs_total's `outcome`). */
export const JOB_OUTCOMES = ["succeeded", "failed", "retried", "dead_lettered", "revoked"] as const;

export interface MetricsOptions {
  readonly service: string;
  readonly db?: Database;
  /** Its counters are read at scrape time. */
  readonly blacklist?: Pick<Blacklist, "stats">;
  /** Node.js process metrics (CPU, memory, event loop). @default true */
  readonly defaultMetrics?: boolean;
}

/** A counter fed from a running total kept elsewhere: adds the growth since the last scrape. */
function fromTotal(counter: Counter<string>, labels: Record<string, string>, key: string, last: Map<string, number>, total: number): void {
  const before = last.get(key) ?? 0;
  if (total > before) counter.inc(labels, total - before);
  last.set(key, Math.max(total, before));
}

export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly httpTotal: Counter<"method" | "route" | "status_code">;
  private readonly httpDuration: Histogram<"method" | "route" | "status_code">;
  private readonly evaluations: Counter<"level" | "decision">;
  private readonly evaluationDuration: Histogram<string>;
  private readonly blockReasons: Counter<"rule">;
  private readonly jobs: Counter<"task" | "outcome">;
  private readonly jobDuration: Histogram<"task">;
  private readonly waitingOver24h: Gauge<string>;

  constructor(o: MetricsOptions) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ service: o.service });
    if (o.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: "shopfds_" });
    this.httpTotal = new Counter({ name: "shopfds_http_requests_total", help: "HTTP requests by route and status", labelNames: ["method", "route", "status_code"], registers });
    this.httpDuration = new Histogram({
      name: "shopfds_http_request_duration_seconds",
      help: "HTTP request duration",
      labelNames: ["method", "route", "status_code"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.evaluations = new Counter({ name: "shopfds_fds_evaluations_total", help: "FDS evaluations by risk level and decision", labelNames: ["level", "decision"], registers });
    this.blockReasons = new Counter({ name: "shopfds_fds_block_reasons_total", help: "Blocked transactions by each rule that contributed", labelNames: ["rule"], registers });
    this.evaluationDuration = new Histogram({ name: "shopfds_fds_evaluation_duration_seconds", help: "FDS evaluation time", buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25], registers });
    this.jobs = new Counter({ name: "shopfds_jobs_total", help: "Background tasks by outcome", labelNames: ["task", "outcome"], registers });
    this.jobDuration = new Histogram({ name: "shopfds_job_duration_seconds", help: "Background task run time", labelNames: ["task"], buckets: [0.01, 0.1, 0.5, 1, 5, 30, 120], registers });
    this.waitingOver24h = new Gauge({ name: "shopfds_tasks_waiting_over_24h", help: "Tasks pending or running for more than 24 hours (the stale-task check)", registers });

    if (o.db) {
      const db = o.db;
      const last = new Map<string, number>();
      // Registered first, so its collect (which updates the whole group) runs before any of them is read.
      let writes: Counter<string>, fallbacks: Counter<string>, up: Gauge<"replica">, lag: Gauge<"replica">, poolConnections: Gauge<"pool" | "state">, poolMax: Gauge<"pool">, poolWaiting: Gauge<"pool">;
      new Counter({
        name: "shopfds_db_reads_total",
        help: "Reads by where they ran",
        labelNames: ["target"],
        registers,
        collect() {
          const s = db.stats();
          fromTotal(this, { target: "primary" }, "reads:primary", last, s.reads.primary);
          fromTotal(this, { target: "replica" }, "reads:replica", last, s.reads.replicas);
          fromTotal(writes, {}, "writes", last, s.writes);
          fromTotal(fallbacks, {}, "fallbacks", last, s.fallbacks);
          for (const r of s.replicas) {
            up.set({ replica: r.name }, r.healthy ? 1 : 0);
            if (r.lagMs !== undefined) lag.set({ replica: r.name }, r.lagMs / 1000);
          }
          for (const p of s.pools ?? []) {
            poolConnections.set({ pool: p.name, state: "in_use" }, p.total - p.idle);
            poolConnections.set({ pool: p.name, state: "idle" }, p.idle);
            poolMax.set({ pool: p.name }, p.max);
            poolWaiting.set({ pool: p.name }, p.waiting);
          }
        },
      });
      writes = new Counter({ name: "shopfds_db_writes_total", help: "Writes (always on the primary)", registers });
      fallbacks = new Counter({ name: "shopfds_db_fallbacks_total", help: "Reads that fell back from a replica", registers });
      up = new Gauge({ name: "shopfds_db_replica_up", help: "1 while the replica is in rotation", labelNames: ["replica"], registers });
      lag = new Gauge({ name: "shopfds_db_replica_lag_seconds", help: "Replication lag measured by LSN", labelNames: ["replica"], registers });
      poolConnections = new Gauge({ name: "shopfds_db_pool_connections", help: "Connections of each pool (primary, each replica) by state", labelNames: ["pool", "state"], registers });
      poolMax = new Gauge({ name: "shopfds_db_pool_max_connections", help: "The most connections each pool opens", labelNames: ["pool"], registers });
      poolWaiting = new Gauge({ name: "shopfds_db_pool_waiting_clients", help: "Queries waiting for a connection of each pool", labelNames: ["pool"], registers });
    }
    if (o.blacklist) {
      const blacklist = o.blacklist;
      const last = new Map<string, number>();
      let hits: Counter<string>, fallbacks: Counter<string>;
      new Counter({
        name: "shopfds_blacklist_checks_total",
        help: "Blacklist checks",
        registers,
        collect() {
          const s = blacklist.stats();
          fromTotal(this, {}, "checks", last, s.checks);
          fromTotal(hits, {}, "hits", last, s.hits);
          fromTotal(fallbacks, {}, "fallbacks", last, s.fallbacks);
        },
      });
      hits = new Counter({ name: "shopfds_blacklist_hits_total", help: "Checks that found a listed value", registers });
      fallbacks = new Counter({ name: "shopfds_blacklist_fallbacks_total", help: "Checks answered by PostgreSQL because Redis could not", registers });
    }
  }

  /** Records one HTTP request (route: the pattern, e.g. `/orders/:id`, never the raw URL). */
  observeHttp(method: string, route: string, statusCode: number, seconds: number): void {
    const labels = { method, route, status_code: String(statusCode) };
    this.httpTotal.inc(labels);
    this.httpDuration.observe(labels, seconds);
  }

  observeEvaluation(e: Evaluation): void {
    this.evaluations.inc({ level: e.level, decision: e.decision });
    this.evaluationDuration.observe(e.elapsedMs / 1000);
    if (e.decision === "block") for (const f of e.factors) this.blockReasons.inc({ rule: f.rule });
  }

  /**
   * Starts every outcome of `tasks` at 0, so each series exists from the first scrape (a rate over a
   * series that appears at its first retry misses that retry, and a dashboard panel shows nothing).
   */
  knownTasks(tasks: readonly string[]): void {
    for (const task of tasks) for (const outcome of JOB_OUTCOMES) this.jobs.inc({ task, outcome }, 0);
  }

  observeJob(task: string, outcome: (typeof JOB_OUTCOMES)[number], seconds?: number): void {
    this.jobs.inc({ task, outcome });
    if (seconds !== undefined) this.jobDuration.observe({ task }, seconds);
  }

  /** Set by the stale-task check; the CriticalTaskWaiting alert reads it. */
  setTasksWaitingOver24h(count: number): void {
    this.waitingOver24h.set(count);
  }

  /** A `(req, res)` handler for `/metrics` (node:http, Express). */
  handler(): (req: IncomingMessage, res: ServerResponse) => void {
    return (_req, res) => {
      this.registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": this.registry.contentType });
          res.end(text);
        },
        (error: Error) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(`metrics collection failed: ${error.message}`);
        },
      );
    };
  }
}
