/**
 * The TypeScript worker against the workers a user would pick instead, in the same run (issue 27):
 * celery.node (the existing JavaScript Celery worker, same broker) and BullMQ (the Node job queue most
 * teams choose, on a Redis of its own). Each workload (no-op, and 2 ms of I/O: a timer) runs TASKS tasks
 * queued beforehand (not timed) at the same concurrency; the clock runs from the first task's start to
 * the last task's end, so no worker's start-up counts. Rounds alternate the peers' order.
 *
 * Equal work, and where it is not:
 * - no result is kept anywhere: ours with ignore_result (Celery's option), celery.node with its result
 *   store replaced by a no-op (it has no ignore_result: its amqp backend declares a queue per task),
 *   BullMQ with removeOnComplete (it still writes the return value, then deletes the job);
 * - acknowledgement after the task with a bounded prefetch: ours as shipped (acks late, prefetch
 *   concurrency × 4, task events off until a monitor asks, as Celery); celery.node acks each message on
 *   receipt and runs every delivered message at once, so its subscribe is replaced here by one that acks
 *   after the task with the prefetch at the concurrency (else "concurrency" would mean nothing); its log
 *   line per task (console.info) is silenced;
 * - BullMQ's Redis: AOF with fsync every second, as a durable queue would run (RabbitMQ persists the
 *   messages: persistent, durable queue).
 */
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { Queue, Worker as BullWorker } from "bullmq";
import * as celeryNode from "celery-node";
import { Message } from "celery-node/dist/kombu/message";
import type { Channel, ConsumeMessage } from "amqplib";
import { TaskProducer } from "../../runtime/jobs/producer";
import { Worker } from "../../runtime/jobs/worker";
import type { BenchReport } from "./report";
import { pidFromFile, run, stopPid, waitFor } from "../local-stack/process";

const TASKS = Number(process.env.BENCH_PEER_TASKS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_PEER_ROUNDS ?? 3);
const ALL_WORKLOADS = [
  { name: "no-op", concurrency: 4, ioMs: 0 },
  { name: "no-op", concurrency: 32, ioMs: 0 },
  { name: "2 ms I/O", concurrency: 4, ioMs: 2 },
  { name: "2 ms I/O", concurrency: 32, ioMs: 2 },
] as const;
/** BENCH_PEER_WORKLOAD=no-op/32 (name/concurrency) and BENCH_PEER_ONLY=ts: one workload or peer, e.g. under a profiler. */
const WORKLOADS = ALL_WORKLOADS.filter((w) => !process.env.BENCH_PEER_WORKLOAD || process.env.BENCH_PEER_WORKLOAD === `${w.name}/${w.concurrency}`);
type Workload = (typeof WORKLOADS)[number];

/** Counts task ends; resolves once `total` ended, with the span from the first start to the last end. */
function stopwatch(total: number) {
  let first = 0;
  let ended = 0;
  let resolve!: (ms: number) => void;
  const done = new Promise<number>((r) => (resolve = r));
  return {
    done,
    task: async (ioMs: number) => {
      if (first === 0) first = performance.now();
      if (ioMs > 0) await new Promise((r) => setTimeout(r, ioMs));
      if (++ended === total) resolve(performance.now() - first);
    },
  };
}

/** A peer: each round queues the tasks (untimed), starts a worker and resolves with the span. */
interface Peer {
  readonly name: string;
  round(w: Workload): Promise<number>;
}

async function queueInBatches(send: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < TASKS; i += 500) await Promise.all(Array.from({ length: Math.min(500, TASKS - i) }, (_, k) => send(i + k)));
}

function ours(url: string, producer: TaskProducer, prefix: string): Peer {
  const queue = `${prefix}.peer-ts`;
  let declared: Promise<void> | undefined;
  const newWorker = (concurrency: number) => new Worker({ url, queue, hostname: `${prefix}-peer-ts@bench`, concurrency });
  return {
    name: "TypeScript worker",
    async round(w) {
      // The queue is declared by a worker's start, as in production.
      await (declared ??= (async () => {
        const first = newWorker(1);
        await first.start();
        await first.stop();
      })());
      const watch = stopwatch(TASKS);
      const worker = newWorker(w.concurrency);
      worker.register("bench.peer", () => watch.task(w.ioMs));
      await queueInBatches((i) => producer.send("bench.peer", [i], {}, { queue, ignoreResult: true }));
      await worker.start();
      try {
        return await watch.done;
      } finally {
        await worker.stop();
      }
    },
  };
}

/**
 * celery.node's broker, acking after the task with the prefetch at the concurrency (see the top);
 * `acked()` resolves once every task run so far has been acknowledged (before the connection closes).
 */
function boundedSubscribe(worker: ReturnType<typeof celeryNode.createWorker>, concurrency: number): { acked: () => Promise<void>; channel: Promise<Channel> } {
  const broker = (worker as unknown as { broker: { channel: Promise<Channel>; subscribe: unknown } }).broker;
  const running = new Set<Promise<void>>();
  broker.subscribe = async (queue: string, callback: (m: Message) => Promise<unknown>) => {
    const ch = await broker.channel;
    await ch.prefetch(concurrency);
    return ch.consume(queue, (raw: ConsumeMessage | null) => {
      if (!raw) return;
      const m = new Message(raw.content, raw.properties.contentType as string, raw.properties.contentEncoding as string, raw.properties, raw.properties.headers ?? {});
      // A delivery after the round's last task (a redelivered leftover) may meet the connection closing.
      const run: Promise<void> = callback(m)
        .catch(() => undefined)
        .then(() => ch.ack(raw))
        .catch(() => undefined)
        .finally(() => running.delete(run));
      running.add(run);
    });
  };
  return { acked: async () => void (await Promise.all(running)), channel: broker.channel };
}

function celeryNodePeer(url: string, producer: TaskProducer, prefix: string): Peer {
  const queue = `${prefix}.peer-celery-node`;
  return {
    name: "celery.node 0.5.9",
    async round(w) {
      const watch = stopwatch(TASKS);
      const worker = celeryNode.createWorker(url, url, queue);
      (worker as unknown as { backend: { storeResult: () => Promise<void> } }).backend.storeResult = async () => undefined;
      worker.register("bench.peer", () => watch.task(w.ioMs));
      const subscription = boundedSubscribe(worker, w.concurrency);
      await worker.isReady(); // declares its queue
      // Exactly this round's tasks: nothing left over from an earlier round's stop.
      await (await subscription.channel).purgeQueue(queue);
      await queueInBatches((i) => producer.send("bench.peer", [i], {}, { queue, ignoreResult: true }));
      const info = console.info;
      console.info = () => undefined;
      try {
        void worker.start();
        return await watch.done;
      } finally {
        await worker.whenCurrentJobsFinished();
        await subscription.acked();
        await worker.disconnect();
        console.info = info;
      }
    },
  };
}

/** A port free on loopback now (the stack's own ports are taken). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

async function startBullRedis(dir: string): Promise<{ pid: number; port: number }> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const pidFile = path.join(dir, "redis.pid");
  await run("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--daemonize", "yes", "--pidfile", pidFile, "--logfile", path.join(dir, "redis.log"), "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction"]);
  const pid = await waitFor(`BullMQ's Redis on 127.0.0.1:${port} (log: ${dir}/redis.log)`, 20_000, async () => pidFromFile(pidFile));
  // A crash exits without the finally below; the server (daemonized, not the stack's) must not outlive it.
  process.once("exit", () => {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      /* stopped already */
    }
  });
  return { pid, port };
}

function bullPeer(port: number, prefix: string): Peer & { close(): Promise<void> } {
  const connection = { host: "127.0.0.1", port, maxRetriesPerRequest: null };
  const queueName = `${prefix}-peer-bullmq`;
  const queue = new Queue(queueName, { connection });
  return {
    name: "BullMQ 6.7",
    async round(w) {
      const watch = stopwatch(TASKS);
      for (let i = 0; i < TASKS; i += 1000) {
        await queue.addBulk(Array.from({ length: Math.min(1000, TASKS - i) }, (_, k) => ({ name: "bench.peer", data: { i: i + k }, opts: { removeOnComplete: true, removeOnFail: true } })));
      }
      const worker = new BullWorker(queueName, () => watch.task(w.ioMs), { connection, concurrency: w.concurrency, autorun: false });
      void worker.run();
      try {
        return await watch.done;
      } finally {
        await worker.close();
      }
    },
    close: () => queue.close(),
  };
}

export async function peersBench(report: BenchReport, rabbitUrl: string, dir: string): Promise<void> {
  const prefix = `bench${process.pid}`;
  const producer = await TaskProducer.connect(rabbitUrl);
  const redis = await startBullRedis(path.join(dir, "bullmq-redis"));
  const bull = bullPeer(redis.port, prefix);
  const peers: Peer[] = [ours(rabbitUrl, producer, prefix), ...(process.env.BENCH_PEER_ONLY === "ts" ? [] : [celeryNodePeer(rabbitUrl, producer, prefix), bull])];
  try {
    const rates = new Map<string, number[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const w of WORKLOADS) {
        // Each peer goes first once in three rounds.
        const order = peers.map((_, i) => peers[(i + round) % peers.length]!);
        for (const peer of order) {
          const ms = await peer.round(w);
          const key = `${w.name}, concurrency ${w.concurrency}: ${peer.name}`;
          rates.set(key, [...(rates.get(key) ?? []), (TASKS / ms) * 1000]);
        }
      }
      process.stderr.write(`peer round ${round + 1}/${ROUNDS} done\n`);
    }
    console.log(`\nworkers side by side: ${TASKS} tasks queued beforehand per run, ${ROUNDS} rounds alternating; no results kept, acks after the task, prefetch bounded (scripts/bench/peers.ts says what each does)`);
    for (const w of WORKLOADS) {
      const key = (peer: Peer) => `${w.name}, concurrency ${w.concurrency}: ${peer.name}`;
      const [tsPeer, ...others] = peers;
      if (others.length === 0) report.add(key(tsPeer!), "tasks/s", "higher", rates.get(key(tsPeer!))!);
      for (const other of others) report.add(key(other!), "tasks/s", "higher", rates.get(key(other!))!);
      for (const other of others) {
        report.add(`${key(tsPeer!)} vs ${other!.name}`, "tasks/s", "higher", rates.get(key(tsPeer!))!, { baseline: key(other!), goal: (_m, ratio) => ({ text: `≥ ×1 of ${other!.name}`, met: (ratio ?? 0) >= 1 }) });
      }
    }
  } finally {
    await producer.close();
    await bull.close();
    await stopPid(redis.pid, "SIGTERM");
  }
}
