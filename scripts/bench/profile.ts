/**
 * `npm run bench:profile [-- <file.cpuprofile>…]`: where a process's CPU went, from the V8 CPU profiles
 * that `BENCH_CPU_PROF=1 BENCH_LOAD_ONLY=post npm run bench -- service` writes to .bench/profiles/<process>/
 * (service, worker, bare-http, bare-pipeline, bare-consumer). Self time summed by where the code lives (a package
 * in node_modules, the runtime, the service, Node's own internals, the garbage collector, idle) and the
 * hottest functions with their file, so a cut is aimed at what costs, not at what looks slow.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { BENCH_DIR } from "./compare";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code lives: a package, the project's own parts, Node, or V8's pseudo-frames. */
export function area(url: string, functionName: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : `native ${functionName || "(anonymous)"}`;
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0]}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/(runtime|service|scripts)\/(?:dist\/)?([^/]+)/.exec(url);
  return own ? `${own[1]}/${own[2]}` : url;
}

/**
 * A gap between two samples longer than this (the profiler samples every millisecond) is time the process
 * was stopped, not time it ran: the bench's "worker away" run SIGSTOPs the worker, and V8 charges the
 * whole pause to the first sample after SIGCONT (10.3 s of one stack, `Transform._read`, in a worker profile).
 */
export const STOPPED_GAP_MS = 1000;
const stopped = (profile: Profile, i: number) => (profile.timeDeltas[i] ?? 0) / 1000 > STOPPED_GAP_MS;

/** Self time per sample's leaf frame, in ms, grouped by `key`; a stopped process's pause as "(stopped)". */
export function selfTime(profile: Profile, key: (node: ProfileNode) => string): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const k = stopped(profile, i) ? "(stopped)" : key(byId.get(id)!);
    out.set(k, (out.get(k) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return new Map([...out].sort((a, b) => b[1] - a[1]));
}

/**
 * Inclusive time by area: each sample counts once for every area on its stack (the logger's time with
 * what it calls, JSON and the write included), so "what the access line costs" has an answer.
 */
export function inclusiveTime(profile: Profile, key: (node: ProfileNode) => string | undefined): Map<string, number> {
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    if (stopped(profile, i)) return;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const k = key(byId.get(at)!);
      if (k !== undefined) seen.add(k);
    }
    for (const k of seen) out.set(k, (out.get(k) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return new Map([...out].sort((a, b) => b[1] - a[1]));
}

function summarise(file: string): void {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const areas = selfTime(profile, (n) => area(n.callFrame.url, n.callFrame.functionName));
  const ran = ([k]: [string, number]) => k !== "(idle)" && k !== "(stopped)";
  const busy = [...areas].filter(ran).reduce((n, [, ms]) => n + ms, 0);
  const pause = areas.get("(stopped)");
  console.log(`\n${path.relative(process.cwd(), file)}: ${busy.toFixed(0)} ms busy (idle ${(areas.get("(idle)") ?? 0).toFixed(0)} ms${pause ? `, stopped ${pause.toFixed(0)} ms` : ""})`);
  for (const [k, ms] of [...areas].filter(ran).slice(0, 18)) console.log(`  ${((ms / busy) * 100).toFixed(1).padStart(5)} %  ${k}`);
  const inclusive = inclusiveTime(profile, (n) => {
    const a = area(n.callFrame.url, n.callFrame.functionName);
    return a.startsWith("(") || a.startsWith("native") || a.startsWith("node:") ? undefined : a;
  });
  console.log("  with what they call (inclusive):");
  for (const [k, ms] of [...inclusive].slice(0, 14)) console.log(`  ${((ms / busy) * 100).toFixed(1).padStart(5)} %  ${k}`);
  const fns = selfTime(profile, (n) => `${n.callFrame.functionName || "(anonymous)"}  ${n.callFrame.url.replace(/^.*node_modules\//, "").replace(process.cwd() + "/", "")}:${n.callFrame.lineNumber + 1}`);
  console.log("  hottest functions (self time):");
  for (const [k, ms] of [...fns].filter(([k]) => !k.startsWith("(idle)") && k !== "(stopped)").slice(0, 15)) console.log(`  ${((ms / busy) * 100).toFixed(1).padStart(5)} %  ${k}`);
}

/** Each process's profile: the largest in its directory (a tsx process also writes its loader thread's). */
function profiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const files = readdirSync(path.join(dir, name)).filter((f) => f.endsWith(".cpuprofile")).map((f) => path.join(dir, name, f));
    return files.sort((a, b) => statSync(b).size - statSync(a).size).slice(0, 1);
  });
}

if (require.main === module) {
  const dir = path.join(BENCH_DIR, "profiles");
  const files = process.argv.slice(2).length > 0 ? process.argv.slice(2) : profiles(dir);
  if (files.length === 0) {
    console.error(`bench:profile: no profiles in ${dir}: run BENCH_CPU_PROF=1 BENCH_LOAD_ONLY=post npm run bench -- service first`);
    process.exit(1);
  }
  for (const f of files) summarise(f);
}
