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
