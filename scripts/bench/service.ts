/**
 * The reference service's benchmarks (part of `npm run bench`, or alone: `npm run bench -- service`):
 *
 * - SC-004: POST /orders with the confirmation e-mail enqueued (a worker sends it) against the same
 *   handler with the e-mail sent inline, through the same task code, to an SMTP server that takes
 *   500 ms per message; sequential requests, the two modes alternating, in one run.
 * - Load: wrk (scripts/bench/wrk.ts, a process of its own) on loopback against the service and a worker
 *   running as their own processes on the bench stack, for POST /orders and GET /orders/:id, bounded in time (BENCH_LOAD_SECONDS, default 10
 *   each); orders per second, latency percentiles, and the share of reads the replica served (from the
 *   service's own /metrics).
 *
 * The velocity rule allows 5 orders per user and per IP in 10 minutes, so the load spreads over 20 000
 * bench users and one IP per request (from 10.0.0.0/8), as real traffic from many buyers would.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { createServer, type Server } from "node:http";
import { Writable } from "node:stream";
import nodemailer from "nodemailer";
import { SMTPServer } from "smtp-server";
import { Database } from "../../runtime/db/router";
import { registerShopTasks } from "../../service/tasks";
import { Worker, type TaskHandler } from "../../runtime/jobs/worker";
import { createLogger } from "../../runtime/observability/logger";
import type { StackOutputs } from "../../runtime/outputs";
import { ORDER_EMAIL_TASK, ORDER_READ_SQL, STATEMENT, type OrderTaskSender } from "../../service/shop/orders";
import { bareOrderWork } from "./bare";
import { wrk, type LoadRequest, type LoadResult } from "./wrk";
import { cpuPerRequest, cpuSnapshot, formatCpu } from "./cpu";
import { countSyscalls, perRequest as syscallsPerRequest, straceAvailable } from "./syscalls";
import { median, type BenchReport } from "./report";
import { BENCH_DIR } from "./compare";
import { isAlive, stopPid, waitFor } from "../local-stack/process";
import { createApp } from "../../service/http/app";
import { buildServiceDeps } from "../../service/deps";

const SC004_ORDERS = Number(process.env.BENCH_SC004_ORDERS ?? 20);
const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 10);
const LOAD_CONNECTIONS = Number(process.env.BENCH_LOAD_CONNECTIONS ?? 8);
/**
 * Buyers the load spreads its orders over, in turn: more than one run places (3 rounds of POST /orders
 * place about 42 000), so no buyer or IP passes the FDS velocity rule (5 per user or IP in 10 minutes)
 * and the bench never trips the rules it measures (it did: a 403 aborted a run). A 403 is still fatal.
 */
const BENCH_USERS = 60_000;
const SMTP_DELAY_MS = 500;

const LOG_DIR = path.join(BENCH_DIR, "logs");
const LOAD_ROUNDS = Number(process.env.BENCH_LOAD_ROUNDS ?? 3);
/** BENCH_LOAD_ONLY=post (or get): only those runs, e.g. for a CPU profile of the order path (BENCH_CPU_PROF=1). */
const ONLY = process.env.BENCH_LOAD_ONLY === "post" || process.env.BENCH_LOAD_ONLY === "get" ? process.env.BENCH_LOAD_ONLY : undefined;
const listen = (server: Server | SMTPServer) =>
  new Promise<number>((resolve) => {
    const net = server instanceof SMTPServer ? (server as unknown as { server: Server }).server : server;
    server.listen(0, "127.0.0.1", () => resolve((net.address() as { port: number }).port));
  });

/** An SMTP server that accepts every message after `delayMs`, like a slow relay. */
function slowSmtp(delayMs: number): SMTPServer {
  return new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    onData(stream, _session, callback) {
      stream.resume();
      stream.on("end", () => setTimeout(callback, delayMs));
    },
  });
}

/** Where this run starts in the buyers' turn (another run minutes earlier starts elsewhere). */
let orderNo = Math.floor(Math.random() * BENCH_USERS);
/** An order from the next bench user in turn, from an IP of its own, for 1–3 seeded products. */
function orderBody(userIds: readonly number[], productIds: readonly number[]): string {
  const n = ++orderNo;
  const items = Array.from({ length: 1 + (n % 3) }, (_, k) => ({ productId: productIds[(n * 7 + k * 13) % productIds.length]!, quantity: 1 }));
  const unique = [...new Map(items.map((i) => [i.productId, i])).values()];
  return JSON.stringify({ userId: userIds[n % userIds.length], items: unique, ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, email: `bench${n % userIds.length}@load.test` });
}

async function benchData(db: Database): Promise<{ userIds: number[]; productIds: number[]; orderIds: number[] }> {
  await db.query(
    `INSERT INTO users (email, password_hash, name) SELECT 'bench' || i || '@load.test', 'bench-no-login', 'Bench ' || i FROM generate_series(0, $1 - 1) AS i ON CONFLICT (email) DO NOTHING`,
    [BENCH_USERS],
  );
  const users = await db.query<{ id: string }>("SELECT id FROM users WHERE email LIKE '%@load.test' ORDER BY id", [], { fresh: true });
  await db.query("UPDATE products SET stock = 10000000 WHERE is_active");
  const products = await db.query<{ id: string }>("SELECT id FROM products WHERE is_active ORDER BY id LIMIT 200", [], { fresh: true });
  const orders = await db.query<{ id: string }>("SELECT id FROM orders ORDER BY id", [], { fresh: true });
  if (products.rows.length === 0 || orders.rows.length === 0) throw new Error("the bench stack has no products or orders: seed it first");
  // A database that has just been seeded has no statistics yet and autovacuum about to start: settle it
  // first, as a database in service is, so that neither lands in the first measured round.
  await db.query("VACUUM ANALYZE", [], { target: "primary" });
  return { userIds: users.rows.map((r) => Number(r.id)), productIds: products.rows.map((r) => Number(r.id)), orderIds: orders.rows.map((r) => Number(r.id)) };
}

/** SC-004: the same POST /orders, e-mail enqueued vs e-mail sent inline to a 500 ms SMTP server. */
async function sc004(report: BenchReport, outputs: StackOutputs, db: Database, data: { userIds: number[]; productIds: number[] }): Promise<void> {
  const smtp = slowSmtp(SMTP_DELAY_MS);
  const smtpPort = await listen(smtp);
  const mailer = nodemailer.createTransport({ host: "127.0.0.1", port: smtpPort, secure: false, ignoreTLS: true, pool: true, maxConnections: 4 });
  const queue = `bench${process.pid}.sc004`;
  // The service's own wiring (service/deps.ts); /health runs no checks here (not what is measured).
  const log = createLogger({ service: "bench", environment: "dev", destination: new Writable({ write: (_c, _e, done) => done() }) });
  const app = await buildServiceDeps(outputs, { service: "bench", log, jobs: { queue }, health: { checks: "none" }, defaultMetrics: false });
  const queued = app.jobs;
  // Inline: the e-mail task's own code, run before the answer (what the service would do without a queue).
  const handlers = new Map<string, TaskHandler>();
  const deps = { db, mailer, from: "ShopFDS <no-reply@shopfds.local>", reportsBaseUrl: "http://127.0.0.1/reports", sender: queued };
  registerShopTasks({ register: (name: string, fn: TaskHandler) => handlers.set(name, fn) } as unknown as Worker, deps);
  const runInline = async (name: string, args: readonly unknown[] = [], kwargs: Readonly<Record<string, unknown>> = {}, o: { id?: string } = {}) => {
    const id = o.id ?? crypto.randomUUID();
    await handlers.get(name)!([...args], { ...kwargs }, { id, name, retries: 0, hostname: "inline", effectDone: false });
    return { id };
  };
  const inline: OrderTaskSender = { connected: true, send: runInline, sendOrDefer: async (...a) => ({ ...(await runInline(...a)), deferred: false }) };
  const worker = new Worker({ url: outputs.rabbitmq.url, queue, hostname: `bench-sc004-${process.pid}@bench`, concurrency: 8 });
  registerShopTasks(worker, deps);
  await worker.start();
  const servers = await Promise.all(
    [queued, inline].map(async (jobs) => {
      const server = createServer(await createApp({ ...app, jobs }));
      return { server, port: await listen(server) };
    }),
  );
  const post = async (port: number) => {
    const t = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}/orders`, { method: "POST", headers: { "content-type": "application/json" }, body: orderBody(data.userIds, data.productIds) });
    await res.text();
    if (res.status !== 201) throw new Error(`POST /orders answered ${res.status}`);
    return performance.now() - t;
  };
  try {
    for (let i = 0; i < 3; i++) await post(servers[0]!.port), await post(servers[1]!.port); // warm-up
    const times: [number[], number[]] = [[], []];
    for (let i = 0; i < SC004_ORDERS; i++) {
      times[0].push(await post(servers[0]!.port));
      times[1].push(await post(servers[1]!.port));
    }
    const [a, s] = times;
    console.log(`\nSC-004: POST /orders, ${SC004_ORDERS} sequential orders per mode, alternating; the SMTP server takes ${SMTP_DELAY_MS} ms per message`);
    report.add("POST /orders, e-mail sent inline", "ms", "lower", s);
    report.add("POST /orders, e-mail enqueued", "ms", "lower", a, { baseline: "POST /orders, e-mail sent inline", goal: (m) => ({ text: "about 500 ms saved (SC-004)", met: median(s) - m >= 450 }) });
    await waitFor("the queued e-mails sent", 60_000, async () => ((await db.query("SELECT count(*)::int AS n FROM task_log WHERE task_name = $1 AND state <> 'done'", [ORDER_EMAIL_TASK], { fresh: true })).rows[0].n === 0 ? true : undefined));
  } finally {
    for (const { server } of servers) server.close();
    await worker.stop();
    await app.close();
    mailer.close();
    await new Promise((r) => smtp.close(() => r(undefined)));
  }
}

/**
 * A TypeScript script run through tsx, or (`.js`) a compiled entry point run by node as the image does;
 * its output (the ECS log lines) goes to `.bench/logs/<name>.log`, kept after the run.
 */
function startProcess(name: string, script: string[], env: NodeJS.ProcessEnv): ChildProcess {
  // BENCH_CPU_PROF=1: each process writes a V8 CPU profile at its exit (`npm run bench:profile` sums them).
  // A directory per process: a tsx process has a loader thread whose profile is written beside the main one.
  const profile = process.env.BENCH_CPU_PROF === "1" ? ["--cpu-prof", `--cpu-prof-dir=${path.join(BENCH_DIR, "profiles", name)}`] : [];
  const args = [...profile, ...(script[0]!.endsWith(".js") ? script : ["--import", "tsx", ...script])];
  mkdirSync(LOG_DIR, { recursive: true });
  const out = openSync(path.join(LOG_DIR, `${name}.log`), "w");
  try {
    return spawn(process.execPath, args, { env, stdio: ["ignore", out, out] });
  } finally {
    closeSync(out);
  }
}

/** A node process of the stack by its script (the SMTP sink, the webhook sink), else "other node". */
function nodeProcess(pid: number): string {
  let cmdline = "";
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    /* exited meanwhile */
  }
  return cmdline.includes("smtp-sink-server") ? "SMTP sink" : cmdline.includes("webhook-sink") ? "webhook sink" : "other node";
}

async function dbReads(url: string): Promise<{ primary: number; replica: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (target: string) => Number(new RegExp(`^shopfds_db_reads_total\\{[^}]*target="${target}"[^}]*\\} (\\S+)`, "m").exec(text)?.[1] ?? 0);
  return { primary: read("primary"), replica: read("replica") };
}

/** `concurrency` loops calling `op` for `seconds`: completions per second and latency percentiles. */
async function timedLoad(seconds: number, concurrency: number, op: () => Promise<unknown>): Promise<{ perSecond: number; p99: number }> {
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await op();
        latencies.push(performance.now() - t);
      }
    }),
  );
  latencies.sort((x, y) => x - y);
  return { perSecond: (latencies.length / (performance.now() - started)) * 1000, p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0 };
}

/** The route's database work done bare in this process, on `pool` (bare.ts), for generated orders. */
function bareOrders(pool: pg.Pool, data: { userIds: number[]; productIds: number[] }): () => Promise<void> {
  return async () => void (await bareOrderWork(pool, JSON.parse(orderBody(data.userIds, data.productIds))));
}

/**
 * The service and a worker as their own processes on the bench stack, under wrk (LOAD_CONNECTIONS
 * connections, LOAD_SECONDS each), beside the same database work done bare, LOAD_ROUNDS rounds, the two
 * alternating which goes first: POST /orders against the bare order work, GET /orders/:id against the
 * same query on a plain pg pool on the replica.
 */
async function load(report: BenchReport, outputs: StackOutputs, outputsFile: string, portBase: number, data: { userIds: number[]; productIds: number[]; orderIds: number[] }, db: Database): Promise<void> {
  const port = portBase + 80;
  const url = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env, SHOPFDS_OUTPUTS_FILE: outputsFile, SHOPFDS_PUBLIC_URL: url, SHOPFDS_METRICS_HOST: "127.0.0.1" };
  delete env.SHOPFDS_STACK_OUTPUTS;
  // The service and the worker as the image runs them: compiled (npm run build), NODE_ENV=production.
  process.stderr.write("building the service as the image does (npm run build)\n");
  execFileSync("npm", ["run", "build"], { stdio: ["ignore", "ignore", "inherit"] });
  const prodEnv = { ...env, NODE_ENV: "production" };
  const service = startProcess("service", ["service/dist/bin/service.js", "--port", String(port), "--host", "127.0.0.1"], prodEnv);
  const worker = startProcess("worker", ["service/dist/bin/worker.js", "--metrics-port", String(portBase + 81)], prodEnv);
  const bareUrl = `http://127.0.0.1:${portBase + 82}`;
  const bare = startProcess("bare-http", ["scripts/bench/bare.ts", String(portBase + 82)], env);
  // The bare pipeline (bare.ts): the same order work, the publish with confirm, a bare consumer sending the e-mail.
  const pipelineUrl = `http://127.0.0.1:${portBase + 83}`;
  const pipeline = startProcess("bare-pipeline", ["scripts/bench/bare.ts", "pipeline", String(portBase + 83)], env);
  const consumer = startProcess("bare-consumer", ["scripts/bench/bare.ts", "consumer"], env);
  const pgo = outputs.postgres;
  const primary = new pg.Pool({ ...pgo.primary, database: pgo.database, user: pgo.user, password: pgo.password, max: LOAD_CONNECTIONS });
  const replica = new pg.Pool({ ...pgo.replicas[0]!, database: pgo.database, user: pgo.user, password: pgo.password, max: LOAD_CONNECTIONS });
  for (const p of [primary, replica]) p.on("error", () => undefined);
  try {
    await waitFor("the bench service", 60_000, async () => {
      if (service.exitCode !== null) throw new Error(`the service exited (${service.exitCode})`);
      return (await fetch(`${url}/health/ready`).catch(() => undefined))?.ok ? true : undefined;
    });
    for (const [what, child, at] of [["the bare HTTP server", bare, bareUrl], ["the bare pipeline", pipeline, pipelineUrl]] as const) {
      await waitFor(what, 30_000, async () => {
        if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}): see ${LOG_DIR}`);
        return (await fetch(`${at}/ready`).catch(() => undefined))?.ok ? true : undefined;
      });
    }
    // Each run replays fresh requests: new orders (users, IPs, products as orderBody spreads them) and
    // random existing orders to read; more than wrk can send in the run, so none repeats.
    const perRun = LOAD_SECONDS * 5_000;
    const posts = (): LoadRequest[] => Array.from({ length: perRun }, () => ({ method: "POST", path: "/orders", body: orderBody(data.userIds, data.productIds) }));
    const randomOrder = () => data.orderIds[Math.floor(Math.random() * data.orderIds.length)]!;
    const gets = (): LoadRequest[] => Array.from({ length: perRun * 4 }, () => ({ method: "GET", path: `/orders/${randomOrder()}` }));
    // The bare HTTP server's orders have outbox rows nothing sends: a run against it ends once it has
    // answered every request it read (wrk stops with some in flight), so none lands in the next run's
    // window and is waited for as that run's unsent e-mail (a profiled run once timed out on one).
    const answeredAll = (target: string) =>
      waitFor(`${target} to answer what it read`, 30_000, async () => ((await (await fetch(`${target}/ready`)).json()) as { inflight: number }).inflight === 0 || undefined);
    const load = async (target: string, requests: LoadRequest[], seconds = LOAD_SECONDS) => {
      const result = await wrk(target, requests, { seconds, connections: LOAD_CONNECTIONS });
      if (target === bareUrl) await answeredAll(target);
      return result;
    };
    // Where the machine's CPU went per request, by process (cpu.ts), summed over the rounds.
    const group = (pid: number, name: string) =>
      pid === service.pid ? "service" : pid === worker.pid ? "worker" : pid === bare.pid ? "bare HTTP server" : pid === pipeline.pid ? "bare pipeline HTTP" : pid === consumer.pid ? "bare consumer" : pid === process.pid ? "bench" : name.startsWith("postgres") ? "postgres" : name === "beam.smp" ? "rabbitmq" : name === "redis-server" ? "redis" : /^(kworker|kdamond|ksoftirq)/.test(name) ? "kernel" : name === "node" ? nodeProcess(pid) : name;
    const cpu = new Map<string, { perRequest: Map<string, number>[] }>();
    // One wrk run of `requests` (made beforehand, outside the measured window) against `target`. With
    // `settle` (the run's e-mails all sent), the window runs until it is done: the throughput is end to
    // end (orders whose e-mails went out, per second) and the CPU is all of the run's work, so a pipeline
    // whose consumer falls behind during the run is not credited with the work it left for later.
    const measured = async (what: string, target: string, requests: LoadRequest[], settle?: () => Promise<void>): Promise<LoadResult> => {
      const before = cpuSnapshot();
      const started = performance.now();
      const result = await load(target, requests);
      await settle?.();
      const perRequest = cpuPerRequest(before, cpuSnapshot(), result.requests, group);
      cpu.set(what, { perRequest: [...(cpu.get(what)?.perRequest ?? []), perRequest] });
      return settle ? { ...result, perSecond: (result.requests / (performance.now() - started)) * 1000 } : result;
    };
    // The e-mails a POST run enqueued are sent by the worker during the run and after it: the next
    // run starts once they are all sent (else it would pay for them), and how long that took is shown.
    // (Only the run's own: the bare baselines write the same outbox rows, which nothing sends.)
    const drains: number[] = [];
    const drainsAfterAway: number[] = [];
    const drainsBare: number[] = [];
    const dbNow = async () => (await db.query<{ now: Date }>("SELECT now()", [], { target: "primary" })).rows[0]!.now;
    const drained = async (since: Date, into = drains) => {
      const t = performance.now();
      const left = async () => (await db.query<{ state: string; n: number; error: string | null }>("SELECT state, count(*)::int AS n, max(error) AS error FROM task_log WHERE task_name = $1 AND state <> 'done' AND created_at >= $2 GROUP BY state", [ORDER_EMAIL_TASK, since], { fresh: true })).rows;
      await waitFor("the e-mails of the run sent", 120_000, async () => ((await left()).length === 0 ? true : undefined)).catch(async (e: Error) => {
        throw new Error(`${e.message}: ${(await left()).map((r) => `${r.n} ${r.state}${r.error ? ` (${r.error})` : ""}`).join(", ")}`);
      });
      into.push((performance.now() - t) / 1000);
    };
    const servicePosts = async () => {
      const requests = posts();
      const since = await dbNow();
      return measured("POST /orders", url, requests, () => drained(since));
    };
    // The same with the worker stopped (SIGSTOP) during the run, as if it ran on a node of its own: the
    // e-mails wait in RabbitMQ (and its 16 prefetched ones in the stopped worker), then it sends them
    // all (SIGCONT) before the next run. The service's own throughput, the e-mail pipeline set apart.
    const servicePostsWorkerAway = async () => {
      const requests = posts();
      const since = await dbNow();
      process.kill(worker.pid!, "SIGSTOP");
      try {
        return await measured("POST /orders, worker away", url, requests);
      } finally {
        process.kill(worker.pid!, "SIGCONT");
        await drained(since, drainsAfterAway);
      }
    };
    const serviceGets = () => measured("GET /orders/:id", url, gets());
    // The bare pipeline, its e-mails sent by the bare consumer; the next run starts once they all are.
    const pipelinePosts = async () => {
      const requests = posts();
      const since = await dbNow();
      return measured("bare pipeline, POST", pipelineUrl, requests, () => drained(since, drainsBare));
    };
    const barePosts = () => timedLoad(LOAD_SECONDS, LOAD_CONNECTIONS, bareOrders(primary, data));
    // The issue's baseline: the GET's query as a plain pg read (parsed and planned at each call) …
    const bareGets = () => timedLoad(LOAD_SECONDS, LOAD_CONNECTIONS, () => replica.query(ORDER_READ_SQL, [randomOrder()]));
    // … and as the service runs it, a named prepared statement: the database's share of the service's read.
    const barePreparedGets = () => timedLoad(LOAD_SECONDS, LOAD_CONNECTIONS, () => replica.query({ name: STATEMENT.read, text: ORDER_READ_SQL, values: [randomOrder()] }));
    // The same work behind a bare node:http server in its own process (bare.ts): what HTTP alone costs here.
    const bareHttpPosts = () => measured("bare HTTP server, POST", bareUrl, posts());
    const bareHttpGets = () => measured("bare HTTP server, GET", bareUrl, gets());
    // Warm-up: the JIT, every pool connection with its prepared statements, the worker's SMTP pool.
    const warmUp = await dbNow();
    await load(url, posts(), 5);
    await drained(warmUp);
    await load(url, gets(), 3);
    await timedLoad(3, LOAD_CONNECTIONS, bareOrders(primary, data));
    await load(bareUrl, posts(), 3);
    const warmPipeline = await dbNow();
    await load(pipelineUrl, posts(), 3);
    await drained(warmPipeline);
    drains.length = 0;
    type Run = { perSecond: number; p99: number };
    const runs = { bareOrder: [] as Run[], bareHttpOrder: [] as Run[], barePipeline: [] as Run[], post: [] as Run[], postWorkerAway: [] as Run[], bareRead: [] as Run[], barePreparedRead: [] as Run[], bareHttpRead: [] as Run[], get: [] as Run[] };
    const before = await dbReads(url);
    for (let round = 0; round < LOAD_ROUNDS; round++) {
      const pairs: [() => Promise<Run>, keyof typeof runs][] = [
        [barePosts, "bareOrder"],
        [bareHttpPosts, "bareHttpOrder"],
        [pipelinePosts, "barePipeline"],
        [servicePosts, "post"],
        [servicePostsWorkerAway, "postWorkerAway"],
        [bareGets, "bareRead"],
        [barePreparedGets, "barePreparedRead"],
        [bareHttpGets, "bareHttpRead"],
        [serviceGets, "get"],
      ];
      // Alternate the order within each group, so none always gets the warmer (or noisier) slot.
      const order = (round % 2 === 0 ? [0, 1, 2, 3, 4, 5, 6, 7, 8] : [4, 3, 2, 1, 0, 8, 7, 6, 5]).filter((i) => ONLY === undefined || (ONLY === "post") === i <= 4);
      for (const i of order) runs[pairs[i]![1]].push(await pairs[i]![0]());
      process.stderr.write(`load round ${round + 1}/${LOAD_ROUNDS} done\n`);
    }
    // BENCH_SYSCALLS=1: one more run of each request kind against the service and against its bare
    // counterpart (POST: the bare pipeline's HTTP process; GET: the bare HTTP server), each with strace
    // counting that process's system calls (syscalls.ts).
    const syscalls: { request: "POST" | "GET"; what: string; calls: Record<string, number>; top: string }[] = [];
    if (process.env.BENCH_SYSCALLS === "1") {
      const counted = [
        ["POST", "service", service.pid!, url, posts],
        ["POST", "bare pipeline HTTP", pipeline.pid!, pipelineUrl, posts],
        ["GET", "service", service.pid!, url, gets],
        ["GET", "bare HTTP server", bare.pid!, bareUrl, gets],
      ] as const;
      if (!straceAvailable()) process.stderr.write("BENCH_SYSCALLS=1: strace is not installed (apt-get install strace): no system call counts\n");
      else
        for (const [request, what, pid, target, requests] of counted.filter(([r]) => ONLY === undefined || r === ONLY.toUpperCase())) {
          const since = await dbNow();
          const { result, calls } = await countSyscalls(pid, () => load(target, requests(), 5));
          if (request === "POST") await drained(since, []);
          const top = [...calls].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([name, n]) => `${name} ${(n / result.requests).toFixed(1)}`).join(", ");
          syscalls.push({ request, what, calls: syscallsPerRequest(calls, result.requests), top });
        }
    }
    const after = await dbReads(url);
    console.log(`\nload: ${LOAD_CONNECTIONS} connections, ${LOAD_SECONDS} s each, ${LOAD_ROUNDS} rounds: the compiled service + a worker as processes (wrk on loopback), beside the same database work done bare (2 cores shared by all)`);
    // With BENCH_LOAD_ONLY, the figures of the runs left out (and those judged against them) are not reported.
    const add: BenchReport["add"] = (name, unit, better, samples, o = {}) =>
      samples.length === 0 || (o.baseline !== undefined && !report.figures.some((f) => f.name === o.baseline)) ? (undefined as never) : report.add(name, unit, better, samples, o);
    const rate = (xs: { perSecond: number }[]) => xs.map((x) => x.perSecond);
    const p99 = (xs: { p99: number }[]) => xs.map((x) => x.p99);
    add("bare order transaction", "orders/s", "higher", rate(runs.bareOrder));
    add("bare pipeline, end to end (order, publish with confirm; consumer: claim, read, SMTP, done)", "req/s", "higher", rate(runs.barePipeline));
    add("POST /orders, end to end (until its e-mails are sent)", "req/s", "higher", rate(runs.post), { baseline: "bare pipeline, end to end (order, publish with confirm; consumer: claim, read, SMTP, done)", goal: (_m, ratio) => ({ text: "≥ ×0.5 of the bare pipeline", met: (ratio ?? 0) >= 0.5 }) });
    add("POST /orders vs the bare order transaction", "req/s", "higher", rate(runs.post), { baseline: "bare order transaction" });
    add("POST /orders, worker away (e-mails sent after the run)", "req/s", "higher", rate(runs.postWorkerAway), { baseline: "bare order transaction" });
    add("bare HTTP server, same order work", "req/s", "higher", rate(runs.bareHttpOrder), { baseline: "bare order transaction" });
    add("POST /orders vs bare HTTP", "req/s", "higher", rate(runs.post), { baseline: "bare HTTP server, same order work" });
    add("bare order transaction p99", "ms", "lower", p99(runs.bareOrder));
    add("bare pipeline p99", "ms", "lower", p99(runs.barePipeline));
    add("POST /orders p99", "ms", "lower", p99(runs.post), { baseline: "bare pipeline p99", goal: (m) => ({ text: "< 50 ms", met: m < 50 }) });
    add("POST /orders p99, worker away", "ms", "lower", p99(runs.postWorkerAway), { baseline: "bare order transaction p99" });
    add("bare replica read (GET's query)", "reads/s", "higher", rate(runs.bareRead));
    add("GET /orders/:id", "req/s", "higher", rate(runs.get), { baseline: "bare replica read (GET's query)", goal: (_m, ratio) => ({ text: "≥ ×0.7 of bare", met: (ratio ?? 0) >= 0.7 }) });
    add("bare replica read, prepared (as the service)", "reads/s", "higher", rate(runs.barePreparedRead), { baseline: "bare replica read (GET's query)" });
    add("GET /orders/:id vs prepared read", "req/s", "higher", rate(runs.get), { baseline: "bare replica read, prepared (as the service)" });
    add("bare HTTP server, same query", "req/s", "higher", rate(runs.bareHttpRead), { baseline: "bare replica read (GET's query)" });
    add("GET /orders/:id vs bare HTTP", "req/s", "higher", rate(runs.get), { baseline: "bare HTTP server, same query" });
    add("GET /orders/:id p99", "ms", "lower", p99(runs.get));
    add("POST /orders: e-mails of a run all sent", "s after", "lower", drains);
    add("POST /orders, worker away: its e-mails all sent", "s after SIGCONT", "lower", drainsAfterAway);
    add("bare pipeline: e-mails of a run all sent", "s after", "lower", drainsBare);
    // A run's machine CPU per request, all processes summed, per round.
    const totals = (what: string) => (cpu.get(what)?.perRequest ?? []).map((m) => [...m.values()].reduce((a, b) => a + b, 0));
    console.log("\nwhere the machine's CPU went, per request (all processes, /proc; median of the rounds):");
    for (const [what, { perRequest }] of cpu) {
      const groups = new Set(perRequest.flatMap((m) => [...m.keys()]));
      const medians = new Map([...groups].map((g) => [g, median(perRequest.map((m) => m.get(g) ?? 0))] as const).sort((a, b) => b[1] - a[1]));
      console.log(`  ${what.padEnd(26)} ${formatCpu(medians)}`);
      add(`${what}: machine CPU per request`, "ms", "lower", totals(what));
    }
    // Every run above is CPU-bound (wrk keeps 8 requests in flight on 2 cores), so a throughput ratio is
    // about the inverse ratio of CPU per request: the figures below say what ×0.5 of the bare order work
    // would allow per order, and what the order's parts spend of it, per round.
    const [bareCpu, postCpu, awayCpu] = [totals("bare HTTP server, POST"), totals("POST /orders"), totals("POST /orders, worker away")];
    if (bareCpu.length > 0 && postCpu.length === bareCpu.length && awayCpu.length === bareCpu.length) {
      console.log("\nthe CPU budget of an order at ×0.5 of the bare order work (runs CPU-bound: ×0.5 the throughput is ×2 the CPU per order):");
      add("CPU budget per order at ×0.5 of bare (2 × bare HTTP server's)", "ms", "higher", bareCpu.map((c) => 2 * c));
      add("POST /orders, worker away: CPU per order", "ms", "lower", awayCpu, { baseline: "CPU budget per order at ×0.5 of bare (2 × bare HTTP server's)" });
      add("the e-mail pipeline's CPU per order (worker, broker delivery, SMTP, its statements)", "ms", "lower", postCpu.map((c, i) => c - awayCpu[i]!), { baseline: "CPU budget per order at ×0.5 of bare (2 × bare HTTP server's)" });
    }
    // Issue 27's cost goals, per round: the service's own CPU per order against the bare pipeline's HTTP
    // process (same order work and publish), PostgreSQL's against the bare pipeline's (same statements).
    const part = (what: string, g: string) => (cpu.get(what)?.perRequest ?? []).map((m) => m.get(g) ?? 0);
    if (part("bare pipeline, POST", "bare pipeline HTTP").length > 0) {
      add("bare pipeline: its HTTP process's CPU per order", "ms", "lower", part("bare pipeline, POST", "bare pipeline HTTP"));
      add("POST /orders: the service's own CPU per order", "ms", "lower", part("POST /orders", "service"), { baseline: "bare pipeline: its HTTP process's CPU per order", goal: (_m, ratio) => ({ text: "≤ ×3 of the bare pipeline's", met: (ratio ?? 99) <= 3 }) });
      add("bare pipeline: its consumer's CPU per order", "ms", "lower", part("bare pipeline, POST", "bare consumer"));
      add("POST /orders: the worker's CPU per order", "ms", "lower", part("POST /orders", "worker"), { baseline: "bare pipeline: its consumer's CPU per order" });
      add("bare pipeline: PostgreSQL's CPU per order", "ms", "lower", part("bare pipeline, POST", "postgres"));
      add("POST /orders: PostgreSQL's CPU per order", "ms", "lower", part("POST /orders", "postgres"), { baseline: "bare pipeline: PostgreSQL's CPU per order", goal: (_m, ratio) => ({ text: "≤ ×1.5 of the bare pipeline's", met: (ratio ?? 99) <= 1.5 }) });
      add("bare pipeline: RabbitMQ's CPU per order", "ms", "lower", part("bare pipeline, POST", "rabbitmq"));
      add("POST /orders: RabbitMQ's CPU per order", "ms", "lower", part("POST /orders", "rabbitmq"), { baseline: "bare pipeline: RabbitMQ's CPU per order" });
    }
    const replicaReads = after.replica - before.replica;
    const primaryReads = after.primary - before.primary;
    for (const request of ["POST", "GET"] as const) {
      const counts = syscalls.filter((c) => c.request === request);
      if (counts.length < 2) continue;
      const [ours, bareOne] = counts as [(typeof counts)[0], (typeof counts)[0]];
      const route = request === "POST" ? "POST /orders" : "GET /orders/:id";
      console.log(`\nsystem calls per ${route}, by process (strace -c over one run each; counts, not time):`);
      for (const { what, calls, top } of counts) console.log(`  ${what.padEnd(20)} ${Object.entries(calls).map(([k, n]) => `${k} ${n.toFixed(1)}`).join(", ")}\n  ${"".padEnd(20)} (${top})`);
      for (const kind of ["writes", "reads", "all"]) {
        add(`${bareOne.what}: system calls per ${request} (${kind})`, "calls", "lower", [bareOne.calls[kind]!]);
        add(`${route}: the service's system calls per request (${kind})`, "calls", "lower", [ours.calls[kind]!], { baseline: `${bareOne.what}: system calls per ${request} (${kind})` });
      }
    }
    if (ONLY !== "post") add("GET /orders/:id reads on the replica", "%", "higher", [(replicaReads / Math.max(1, replicaReads + primaryReads)) * 100], { goal: (m) => ({ text: "≥ 80 % (SC-001)", met: m >= 80 }) });
  } finally {
    await Promise.allSettled([primary.end(), replica.end()]);
    for (const child of [service, worker, bare, pipeline, consumer]) if (child.pid && isAlive(child.pid)) await stopPid(child.pid, "SIGTERM", 35_000);
  }
}

export async function serviceBench(report: BenchReport, outputs: StackOutputs, outputsFile: string, portBase: number): Promise<void> {
  const db = await Database.connect(outputs.postgres);
  try {
    const data = await benchData(db);
    await sc004(report, outputs, db, data);
    await load(report, outputs, outputsFile, portBase, data, db);
  } finally {
    await db.close();
  }
}
