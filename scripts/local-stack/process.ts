/**
 * Process helpers for the local stack: run a command (as the `postgres` user when we are root, since
 * PostgreSQL refuses to run as root), and stop a server by its PID.
 */
import { spawn } from "node:child_process";
import { chownSync, closeSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly output: string,
  ) {
    super(`${command} failed (exit ${exitCode}):\n${output.trim().split("\n").slice(-15).join("\n")}`);
    this.name = "CommandError";
  }
}

const isRoot = () => process.getuid?.() === 0;

/** The unprivileged user servers run as: `postgres` when we are root, else ourselves. */
export function serviceUser(): { name: string; uid: number; gid: number } {
  if (!isRoot()) {
    const me = userInfo();
    return { name: me.username, uid: me.uid, gid: me.gid };
  }
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("postgres:"));
  if (!line) throw new Error("running as root, but there is no `postgres` user to run PostgreSQL as; install postgresql (make setup)");
  const [, , uid, gid] = line.split(":");
  return { name: "postgres", uid: Number(uid), gid: Number(gid) };
}

/** Gives a path we created to the service user (no-op unless we are root). */
export function giveToServiceUser(path: string): void {
  if (isRoot()) {
    const u = serviceUser();
    chownSync(path, u.uid, u.gid);
  }
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Run as the service user (needed for PostgreSQL binaries when we are root). */
  asServiceUser?: boolean;
  cwd?: string;
}

/** Runs a command to completion, capturing its output; throws CommandError on a non-zero exit. */
export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const [cmd, argv] = opts.asServiceUser && isRoot() ? ["runuser", ["-u", serviceUser().name, "--", command, ...args]] : [command, [...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", (e) => reject(new CommandError(command, null, e.message)));
    child.on("close", (code) => (code === 0 ? resolve(output) : reject(new CommandError(`${command} ${args[0] ?? ""}`.trim(), code, output))));
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The PID a pid file names, if the file exists and the process lives. */
export function pidFromFile(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

/**
 * Starts a long-running server detached (its own session, output appended to `logFile`), records its
 * PID in `pidFile` so it is stopped by PID later, and returns the PID.
 */
export function spawnDetached(command: string, args: readonly string[], o: { logFile: string; pidFile: string; env?: NodeJS.ProcessEnv; cwd?: string }): number {
  const out = openSync(o.logFile, "a");
  try {
    const child = spawn(command, [...args], { env: o.env ?? process.env, cwd: o.cwd, detached: true, stdio: ["ignore", out, out] });
    child.unref();
    if (!child.pid) throw new Error(`could not start ${command}`);
    writeFileSync(o.pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(out);
  }
}

/** The postmaster's PID from its data directory, if the file exists and the process lives. */
export function postmasterPid(dataDir: string): number | undefined {
  const file = `${dataDir}/postmaster.pid`;
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

/**
 * Stops a process by PID: `signal` first (for PostgreSQL SIGINT is a fast shutdown), SIGKILL if it is
 * still there after `timeoutMs`. Resolves once the process is gone.
 */
export async function stopPid(pid: number, signal: NodeJS.Signals, timeoutMs = 20_000): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, signal);
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      await sleep(100);
      if (isAlive(pid)) throw new Error(`process ${pid} survived SIGKILL`);
      return;
    }
    await sleep(25);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value (not undefined) or the timeout passes. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ""}`);
    }
    await sleep(50);
  }
}
