/**
 * npm run bench:compare [before.json] [after.json]: how each figure moved between two benchmark runs
 * (default: the two latest files in .bench/), flagging what moved beyond the noise (the medians further
 * apart than the larger of the two runs' spreads, and the runs' samples not overlapping), with the chance
 * of so large a move between two runs of the same code. Exits 1 when a figure got worse beyond the
 * noise, so a script can stop on it.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { compareRuns, type RunReport } from "./report";

export const BENCH_DIR = path.resolve(__dirname, "../../.bench");

function main(argv: string[]): number {
  let files = argv.filter((a) => a.endsWith(".json"));
  if (files.length === 0) {
    const found = (() => {
      try {
        return readdirSync(BENCH_DIR).filter((f) => f.endsWith(".json")).sort();
      } catch {
        return [];
      }
    })();
    if (found.length < 2) {
      console.error(`bench:compare: needs two runs; ${BENCH_DIR} holds ${found.length} (run npm run bench twice, or name two files)`);
      return 2;
    }
    files = found.slice(-2).map((f) => path.join(BENCH_DIR, f));
  }
  if (files.length !== 2) {
    console.error(`bench:compare: give two run files, before and after (got ${files.length})`);
    return 2;
  }
  const [before, after] = files.map((f) => JSON.parse(readFileSync(f, "utf8")) as RunReport) as [RunReport, RunReport];
  console.log(`before: ${path.basename(files[0]!)} (commit ${before.commit}${before.dirty ? ", uncommitted changes" : ""})`);
  console.log(`after:  ${path.basename(files[1]!)} (commit ${after.commit}${after.dirty ? ", uncommitted changes" : ""})`);
  const rows = compareRuns(before, after);
  console.log("a change: medians further apart than the larger spread, and no sample of one run inside the other's range (chance: of that between two runs of the same code)");
  const n = (x?: number) => (x === undefined ? "—" : Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(2));
  for (const r of rows) {
    const chance = r.chance === undefined ? "" : ` (chance ${r.chance >= 0.01 ? `${Math.round(r.chance * 100)} %` : `${(r.chance * 100).toFixed(1)} %`})`;
    const mark = { better: "▲ better", worse: "▼ WORSE", noise: "  within noise", new: "  new", gone: "  gone" }[r.verdict] + chance;
    const change = r.changePercent === undefined ? "" : `${r.changePercent >= 0 ? "+" : ""}${r.changePercent.toFixed(1)} %`;
    console.log(`  ${r.name.padEnd(46)} ${n(r.before).padStart(8)} → ${n(r.after).padStart(8)} ${r.unit.padEnd(9)} ${change.padStart(9)}  ${mark}`);
  }
  return rows.some((r) => r.verdict === "worse") ? 1 : 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
