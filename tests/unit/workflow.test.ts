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
    assert.deepEqual(wf.jobs.deploy.needs, ["test", "migrations", "image"]);
    assert.match(wf.jobs.deploy.if, /refs\/heads\/main/);
    const steps = wf.jobs.deploy.steps.map((s: { name?: string; with?: { command?: string } }) => s.name ?? s.with?.command);
    assert.ok(steps.indexOf("migrate") >= 0 && steps.indexOf("migrate") < steps.indexOf("pulumi up"), `order: ${steps.join(", ")}`);
    assert.ok(steps.indexOf("pin the image") >= 0 && steps.indexOf("pin the image") < steps.indexOf("pulumi up"), "pulumi up deploys this commit's image");
    assert.match(wf.jobs.deploy.steps.find((s: { name?: string }) => s.name === "pin the image").run, /shopfds-service:\$\{\{ github\.sha \}\}/);
    const build = wf.jobs.image.steps.find((s: { uses?: string }) => s.uses?.startsWith("docker/build-push-action"));
    assert.match(build.with.tags, /:\$\{\{ github\.sha \}\}/, "the image job pushes the tag deploy pins");
    assert.equal(build.with.push, "${{ github.event_name == 'push' }}", "pull requests build the image without pushing it");
    assert.deepEqual(wf.jobs.migrations.steps.slice(-3).map((s: { run: string }) => s.run), ["node --import tsx scripts/migrate.ts up", "node --import tsx scripts/migrate.ts down --all", "node --import tsx scripts/migrate.ts up"]);
    assert.deepEqual(wf.jobs.preview.strategy.matrix.stack, ["dev", "staging", "prod"]);
  });
});
