/**
 * Where the CPU went during a load: the CPU time of every process on the machine, read from /proc before
 * and after, grouped (the service, the worker, PostgreSQL, Redis, RabbitMQ, the load generator …) and
 * divided by the requests served. On a 2-core machine shared by all of them, a throughput ratio alone
 * does not say whether the service or a dependency is the cost; this does.
 */
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ: 100 on Linux x86_64 and arm64

export type CpuSnapshot = Map<number, { name: string; ticks: number }>;

/** Each process's user + system CPU ticks (all its threads), and its command name. */
export function cpuSnapshot(): CpuSnapshot {
  const snapshot: CpuSnapshot = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    const close = stat.lastIndexOf(")");
    const name = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    // Fields after the name start at field 3 (state); utime and stime are fields 14 and 15.
    snapshot.set(Number(entry), { name, ticks: Number(fields[11]) + Number(fields[12]) });
  }
  return snapshot;
}

/**
 * CPU milliseconds per request between two snapshots, grouped by `group(pid, name)` (undefined: by
 * command name); processes that started in between count from zero, those that ended are not seen.
 */
export function cpuPerRequest(before: CpuSnapshot, after: CpuSnapshot, requests: number, group: (pid: number, name: string) => string | undefined = () => undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const [pid, a] of after) {
    const used = a.ticks - (before.get(pid)?.name === a.name ? before.get(pid)!.ticks : 0);
    if (used <= 0) continue;
    const key = group(pid, a.name) ?? a.name;
    out.set(key, (out.get(key) ?? 0) + ((used / TICKS_PER_SECOND) * 1000) / requests);
  }
  return new Map([...out].sort((x, y) => y[1] - x[1]));
}

export function formatCpu(perRequest: Map<string, number>): string {
  const total = [...perRequest.values()].reduce((a, b) => a + b, 0);
  const shown = [...perRequest].filter(([, ms]) => ms >= total * 0.02);
  return `${total.toFixed(3)} ms CPU/request: ${shown.map(([k, ms]) => `${k} ${ms.toFixed(3)}`).join(", ")}`;
}
