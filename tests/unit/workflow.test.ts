/**
 * Layer 1: the CI workflow is a valid GitHub Actions workflow (action-validator's schema check), and its
 * deployment runs the migrations before `pulumi up`, after the tests and the migration round trip.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { validateWorkflow } from "@action-validator/core";
import { parse } from "yaml";

const text = readFileSync(path.resolve(__dirname, "../../.github/workflows/ci.yml"), "utf8");

describe("CI workflow", () => {
  it("passes the GitHub Actions workflow schema", () => {
    assert.deepEqual(validateWorkflow(text).errors, []);
  });

  it("the schema check can fail: a job without runs-on is reported", () => {
    assert.ok(validateWorkflow("on: push\njobs:\n  broken:\n    steps:\n      - run: true\n").errors.length > 0);
  });

  it("deploys only from main, after the tests and the migrations job, migrating before pulumi up", () => {
    const wf = parse(text);
    assert.deepEqual(wf.jobs.deploy.needs, ["test", "migrations"]);
    assert.match(wf.jobs.deploy.if, /refs\/heads\/main/);
    const steps = wf.jobs.deploy.steps.map((s: { name?: string; with?: { command?: string } }) => s.name ?? s.with?.command);
    assert.ok(steps.indexOf("migrate") >= 0 && steps.indexOf("migrate") < steps.indexOf("pulumi up"), `order: ${steps.join(", ")}`);
    assert.deepEqual(wf.jobs.migrations.steps.slice(-3).map((s: { run: string }) => s.run), ["node --import tsx scripts/migrate.ts up", "node --import tsx scripts/migrate.ts down --all", "node --import tsx scripts/migrate.ts up"]);
    assert.deepEqual(wf.jobs.preview.strategy.matrix.stack, ["dev", "prod"]);
  });
});
