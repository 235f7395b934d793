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
  });
});
