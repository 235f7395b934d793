/**
 * Layer 1: the benchmark's figures and their comparison (scripts/bench/report.ts): medians and spreads
 * from repeated samples, ratios to a same-run baseline, and a comparison that flags a move beyond the
 * noise, in the right direction for times and rates, and calls the rest noise.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BenchReport, compareRuns, median, spread, type RunReport } from "../../scripts/bench/report";

const run = (figures: BenchReport["figures"]): RunReport => ({ commit: "c", dirty: false, date: "d", machine: { cpus: 2, memoryGiB: 24, node: "v20" }, figures });

describe("bench figures", () => {
  it("median and spread (half the range) of the samples; a ratio to the baseline of the same run", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(spread([10, 14, 11]), 2);
    const r = new BenchReport();
    const log = console.log;
    console.log = () => undefined;
    try {
      r.add("bare order transaction", "tx/s", "higher", [600, 640, 620]);
      const f = r.add("POST /orders", "req/s", "higher", [300, 320, 310], { baseline: "bare order transaction", goal: (_m, ratio) => ({ text: "≥ ×0.5", met: (ratio ?? 0) >= 0.5 }) });
      assert.deepEqual([f.median, f.spread, f.baseline?.ratio, f.goal?.met], [310, 10, 0.5, true]);
      assert.throws(() => r.add("x", "ms", "lower", [1], { baseline: "missing" }), /no baseline figure named missing/);
      assert.throws(() => r.add("y", "ms", "lower", [Number.NaN]), /samples must be finite numbers/);
    } finally {
      console.log = log;
    }
  });

  it("compare: beyond the larger spread is a change (better or worse by the figure's direction), inside it is noise", () => {
    const fig = (name: string, better: "lower" | "higher", samples: number[]) => ({ name, unit: "u", better, samples, median: median(samples), spread: spread(samples) });
    const before = run([fig("start", "lower", [4.0, 4.2, 4.1]), fig("rate", "higher", [100, 104, 102]), fig("p99", "lower", [10, 12, 11]), fig("old", "lower", [1])]);
    const after = run([fig("start", "lower", [2.0, 2.1, 2.2]), fig("rate", "higher", [90, 91, 92]), fig("p99", "lower", [10.5, 11.5, 11]), fig("fresh", "lower", [1])]);
    const verdicts = Object.fromEntries(compareRuns(before, after).map((r) => [r.name, r.verdict]));
    assert.deepEqual(verdicts, { start: "better", rate: "worse", p99: "noise", fresh: "new", old: "gone" });
    assert.equal(compareRuns(before, after).find((r) => r.name === "start")?.chance, 0.1, "3 and 3 samples apart: 2 of the 20 orders of 6 samples");
  });

  it("compare: medians beyond the spread but samples overlapping is noise (two runs of the same code, measured here); one sample is judged by its median", () => {
    const fig = (name: string, better: "lower" | "higher", samples: number[]) => ({ name, unit: "u", better, samples, median: median(samples), spread: spread(samples) });
    // GET /orders/:id in two bench runs of the same code minutes apart: medians 4467 and 5455 (+22 %),
    // more than either run's spread (531 and 921), but each run's samples reach into the other's range.
    const before = run([fig("GET", "higher", [5046, 4467, 3985]), fig("share", "higher", [85.5]), fig("five", "lower", [10, 11, 12, 11, 10.5])]);
    const after = run([fig("GET", "higher", [5916, 5455, 4074]), fig("share", "higher", [80]), fig("five", "lower", [8, 8.5, 9, 8.2, 8.8])]);
    const rows = Object.fromEntries(compareRuns(before, after).map((r) => [r.name, r]));
    assert.equal(rows.GET?.verdict, "noise");
    assert.deepEqual([rows.share?.verdict, rows.share?.chance], ["worse", undefined]);
    assert.equal(rows.five?.verdict, "better");
    assert.ok(Math.abs(rows.five!.chance! - 2 / 252) < 1e-12, "5 and 5 samples apart: 2 of 252");
  });
});
