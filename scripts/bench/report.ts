/**
 * The benchmark's figures: each one a set of repeated samples, reported as a median and a spread (half
 * the range of the samples), beside the baseline measured in the same run where it has one. A run's
 * figures are written as JSON (one file per run, with the commit) so `npm run bench:compare` can tell
 * a change beyond the noise from the noise.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import path from "node:path";

export interface Figure {
  readonly name: string;
  readonly unit: string;
  /** Which way is better: a time is lower, a rate higher. */
  readonly better: "lower" | "higher";
  readonly samples: number[];
  readonly median: number;
  /** Half the range of the samples: the noise a change must exceed to count. */
  readonly spread: number;
  /** The figure measured in the same run that this one is judged against, and this one's ratio to it. */
  readonly baseline?: { readonly name: string; readonly ratio: number };
  readonly goal?: { readonly text: string; readonly met: boolean };
}

export interface RunReport {
  readonly commit: string;
  readonly dirty: boolean;
  readonly date: string;
  readonly machine: { readonly cpus: number; readonly memoryGiB: number; readonly node: string };
  readonly figures: Figure[];
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

export const spread = (xs: readonly number[]): number => (xs.length < 2 ? 0 : (Math.max(...xs) - Math.min(...xs)) / 2);

export class BenchReport {
  readonly figures: Figure[] = [];

  /**
   * Records a figure from its samples. `baseline` names a figure already recorded; the ratio printed is
   * this one's median over the baseline's (for a rate, ×0.5 means half the baseline's throughput).
   */
  add(name: string, unit: string, better: Figure["better"], samples: readonly number[], o: { baseline?: string; goal?: (median: number, ratio?: number) => { text: string; met: boolean } } = {}): Figure {
    if (samples.length === 0 || samples.some((s) => !Number.isFinite(s))) throw new Error(`bench figure ${name}: samples must be finite numbers (got ${JSON.stringify(samples)})`);
    const m = median(samples);
    const base = o.baseline !== undefined ? this.figures.find((f) => f.name === o.baseline) : undefined;
    if (o.baseline !== undefined && !base) throw new Error(`bench figure ${name}: no baseline figure named ${o.baseline}`);
    const ratio = base ? m / base.median : undefined;
    const figure: Figure = {
      name,
      unit,
      better,
      samples: [...samples],
      median: m,
      spread: spread(samples),
      ...(base ? { baseline: { name: base.name, ratio: ratio! } } : {}),
      ...(o.goal ? { goal: o.goal(m, ratio) } : {}),
    };
    this.figures.push(figure);
    console.log(formatFigure(figure));
    return figure;
  }

  /** Writes the run's figures to `<dir>/<date>-<commit>.json`; returns the path. */
  write(dir: string): string {
    const git = (...args: string[]) => {
      try {
        return execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
      } catch {
        return "";
      }
    };
    const report: RunReport = {
      commit: git("rev-parse", "--short=12", "HEAD") || "unknown",
      dirty: git("status", "--porcelain", "--untracked-files=no") !== "",
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      figures: this.figures,
    };
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${report.date.replace(/[:.]/g, "-")}-${report.commit}${report.dirty ? "-dirty" : ""}.json`);
    writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
    return file;
  }
}

const num = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2));

export function formatFigure(f: Figure): string {
  const base = f.baseline ? `  ×${f.baseline.ratio.toFixed(2)} of ${f.baseline.name}` : "";
  const goal = f.goal ? `  goal ${f.goal.text}: ${f.goal.met ? "met" : "NOT met"}` : "";
  return `  ${f.name.padEnd(46)} ${num(f.median).padStart(8)} ${f.unit.padEnd(9)} ±${num(f.spread)} (n=${f.samples.length})${base}${goal}`;
}

export type Verdict = "better" | "worse" | "noise" | "new" | "gone";

/**
 * How each figure moved from `before` to `after`: beyond the noise when the medians differ by more
 * than the larger of the two spreads (and by more than 1 %), else noise.
 */
export function compareRuns(before: RunReport, after: RunReport): { name: string; unit: string; before?: number; after?: number; changePercent?: number; verdict: Verdict }[] {
  const rows: { name: string; unit: string; before?: number; after?: number; changePercent?: number; verdict: Verdict }[] = [];
  for (const a of after.figures) {
    const b = before.figures.find((f) => f.name === a.name && f.unit === a.unit);
    if (!b) {
      rows.push({ name: a.name, unit: a.unit, after: a.median, verdict: "new" });
      continue;
    }
    const delta = a.median - b.median;
    const changePercent = b.median === 0 ? 0 : (delta / b.median) * 100;
    const beyond = Math.abs(delta) > Math.max(a.spread, b.spread) && Math.abs(changePercent) > 1;
    const improved = a.better === "lower" ? delta < 0 : delta > 0;
    rows.push({ name: a.name, unit: a.unit, before: b.median, after: a.median, changePercent, verdict: beyond ? (improved ? "better" : "worse") : "noise" });
  }
  for (const b of before.figures) if (!after.figures.some((f) => f.name === b.name && f.unit === b.unit)) rows.push({ name: b.name, unit: b.unit, before: b.median, verdict: "gone" });
  return rows;
}
