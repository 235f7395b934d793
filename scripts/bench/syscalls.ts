/**
 * System calls per request (`BENCH_SYSCALLS=1`): strace -c attached to a process (all its threads) for
 * one load run, detached after it. CPU per request swings by as much as half between rounds on this shared
 * machine; the calls a request makes do not, and socket writes and reads are the largest cost of every
 * process here (the profiles: a third of the service's busy time). strace stops the process at each
 * call, so the run's throughput under it means nothing; only the counts are reported.
 *
 * strace is Debian's `strace` package (not installed by scripts/setup.sh: only this bench option uses it).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

/** The calls of each kind, from strace -c's summary table (`% time seconds usecs/call calls errors syscall`). */
export function parseStraceSummary(text: string): Map<string, number> {
  const calls = new Map<string, number>();
  for (const line of text.split("\n")) {
    const cols = line.trim().split(/\s+/);
    // A data row: four numbers, an optional error count, the call's name.
    if (cols.length < 5 || !/^\d+\.\d+$/.test(cols[0]!) || !/^\d+$/.test(cols[3]!)) continue;
    const name = cols[cols.length - 1]!;
    if (name !== "total") calls.set(name, Number(cols[3]));
  }
  return calls;
}

/** How a request's calls are shown: socket and file writes, reads, the event loop's waits, all calls. */
export const SYSCALL_KINDS: Readonly<Record<string, readonly string[]>> = {
  writes: ["write", "writev", "sendto", "sendmsg", "pwrite64"],
  reads: ["read", "readv", "recvfrom", "recvmsg", "pread64"],
  "event-loop waits": ["epoll_wait", "epoll_pwait", "epoll_pwait2"],
};

/** Calls per request by kind (SYSCALL_KINDS) and in all. */
export function perRequest(calls: ReadonlyMap<string, number>, requests: number): Record<string, number> {
  const sum = (names: readonly string[]) => names.reduce((n, c) => n + (calls.get(c) ?? 0), 0);
  const out: Record<string, number> = {};
  for (const [kind, names] of Object.entries(SYSCALL_KINDS)) out[kind] = sum(names) / requests;
  out.all = [...calls.values()].reduce((a, b) => a + b, 0) / requests;
  return out;
}

export function straceAvailable(): boolean {
  return spawnSync("strace", ["-V"], { stdio: "ignore" }).status === 0;
}

/** Runs `fn` with strace -c attached to `pid` (every thread), and returns its result and the calls counted. */
export async function countSyscalls<T>(pid: number, fn: () => Promise<T>): Promise<{ result: T; calls: Map<string, number> }> {
  const dir = mkdtempSync(path.join(tmpdir(), "shopfds-strace-"));
  const out = path.join(dir, "summary.txt");
  const strace = spawn("strace", ["-c", "-f", "-q", "-o", out, "-p", String(pid)], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  strace.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<string>((resolve) => strace.once("exit", (code, signal) => resolve(signal ?? String(code))));
  try {
    // Attached once strace has stopped the process's threads: give it a moment (it prints nothing with -q).
    await new Promise((r) => setTimeout(r, 500));
    if (strace.exitCode !== null) throw new Error(`strace -p ${pid} exited (${strace.exitCode}): ${stderr.trim()}`);
    const result = await fn();
    // SIGINT: strace detaches, writes the summary, then ends by the same signal (it re-raises it).
    strace.kill("SIGINT");
    const end = await exited;
    if (end !== "0" && end !== "SIGINT") throw new Error(`strace -p ${pid} ended with ${end}: ${stderr.trim()}`);
    const calls = parseStraceSummary(readFileSync(out, "utf8"));
    if (calls.size === 0) throw new Error(`strace -p ${pid} counted no calls: ${stderr.trim() || "(nothing on stderr)"}`);
    return { result, calls };
  } finally {
    if (strace.exitCode === null) strace.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}
