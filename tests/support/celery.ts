/**
 * Test support: Debian's real Celery (`/usr/bin/python3 -m celery`) against the test stack's broker,
 * with the app in tests/interop/celery_app.py. Long-running Celery processes are started in their
 * own process group and stopped by PID (the whole group), pass or fail.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";

export const PYTHON = "/usr/bin/python3";
const APP_DIR = path.resolve(__dirname, "../interop");

export function celeryEnv(brokerUrl: string, queuePrefix: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, PYTHONPATH: APP_DIR, BROKER_URL: brokerUrl, QUEUE_PREFIX: queuePrefix, PYTHONUNBUFFERED: "1" };
}

/** Runs a celery command to completion (inspect, a send script) and returns its stdout. */
export async function celery(env: NodeJS.ProcessEnv, args: string[], timeoutMs = 30_000): Promise<string> {
  const { stdout } = await promisify(execFile)(PYTHON, ["-m", "celery", "-A", "celery_app", ...args], { env, cwd: APP_DIR, timeout: timeoutMs });
  return stdout;
}

/** Runs a Python snippet with the interop app importable. */
export async function python(env: NodeJS.ProcessEnv, code: string, timeoutMs = 30_000): Promise<string> {
  const { stdout } = await promisify(execFile)(PYTHON, ["-c", code], { env, cwd: APP_DIR, timeout: timeoutMs });
  return stdout;
}

export interface Background {
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts a long-running celery command (worker, events) in its own process group. */
export function celeryBackground(env: NodeJS.ProcessEnv, args: string[]): Background {
  const child = spawn(PYTHON, ["-m", "celery", "-A", "celery_app", ...args], { env, cwd: APP_DIR, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.on("data", (d) => (out += d));
  child.stderr?.on("data", (d) => (out += d));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const group = -(child.pid as number);
      try {
        process.kill(group, "SIGTERM");
      } catch {
        return;
      }
      const killed = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000))]);
      if (!killed) {
        try {
          process.kill(group, "SIGKILL");
        } catch {
          /* already gone */
        }
        await exited;
      }
    },
  };
}

/**
 * Starts Debian's Celery worker (`-n name -Q queue`, no mingle or gossip unless `extra` says) and
 * waits until it says it is ready; fails with its output if it exits first.
 */
export async function startCeleryWorker(env: NodeJS.ProcessEnv, o: { name: string; queue: string; concurrency?: number; extra?: string[] }): Promise<Background> {
  const worker = celeryBackground(env, ["worker", "-c", String(o.concurrency ?? 1), ...(o.extra ?? ["--without-mingle", "--without-gossip"]), "-n", o.name, "-Q", o.queue, "--loglevel", "INFO"]);
  const deadline = Date.now() + 30_000;
  while (!/ready\./.test(worker.output())) {
    if (worker.child.exitCode !== null || worker.child.signalCode !== null) throw new Error(`the Celery worker ${o.name} exited before it was ready:\n${worker.output()}`);
    if (Date.now() > deadline) {
      await worker.stop();
      throw new Error(`the Celery worker ${o.name} was not ready within 30 s:\n${worker.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return worker;
}
