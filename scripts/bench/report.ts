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

/** How many ways to choose k of n (exact for the sample counts a bench takes). */
const choose = (n: number, k: number): number => {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c;
};

export interface Comparison {
  readonly name: string;
  readonly unit: string;
  readonly before?: number;
  readonly after?: number;
  readonly changePercent?: number;
  readonly verdict: Verdict;
  /**
   * For a change: how often two runs of the same code would be this far apart by chance, when each
   * run's samples are as likely to come out in any order: 2 / C(n + m, n) for n and m samples (10 % for
   * 3 and 3, 0.8 % for 5 and 5). None for a figure of one sample.
   */
  readonly chance?: number;
}

/**
 * How each figure moved from `before` to `after`. A change must clear the noise twice: the medians
 * differ by more than the larger of the two spreads (and by more than 1 %), and the two runs' samples
 * do not overlap (every sample of one run beyond every sample of the other). The first alone flagged
 * runs of the same code a few minutes apart (GET 4467 → 5455 req/s, samples 3985–5046 and 4074–5916):
 * on this VM runs drift by more than one run's own spread.
 */
export function compareRuns(before: RunReport, after: RunReport): Comparison[] {
  const rows: Comparison[] = [];
  for (const a of after.figures) {
    const b = before.figures.find((f) => f.name === a.name && f.unit === a.unit);
    if (!b) {
      rows.push({ name: a.name, unit: a.unit, after: a.median, verdict: "new" });
      continue;
    }
    const delta = a.median - b.median;
    const changePercent = b.median === 0 ? 0 : (delta / b.median) * 100;
    // A figure of one sample (a share over the whole run) has no noise to measure: the medians decide.
    const single = a.samples.length < 2 || b.samples.length < 2;
    const apart = single || Math.min(...a.samples) > Math.max(...b.samples) || Math.max(...a.samples) < Math.min(...b.samples);
    const beyond = apart && Math.abs(delta) > Math.max(a.spread, b.spread) && Math.abs(changePercent) > 1;
    const improved = a.better === "lower" ? delta < 0 : delta > 0;
    rows.push({
      name: a.name,
      unit: a.unit,
      before: b.median,
      after: a.median,
      changePercent,
      verdict: beyond ? (improved ? "better" : "worse") : "noise",
      ...(beyond && !single ? { chance: 2 / choose(a.samples.length + b.samples.length, b.samples.length) } : {}),
    });
  }
  for (const b of before.figures) if (!after.figures.some((f) => f.name === b.name && f.unit === b.unit)) rows.push({ name: b.name, unit: b.unit, before: b.median, verdict: "gone" });
  return rows;
}
