/** The mock harness itself: a resource graph that would be silently empty under naive mocks must fail. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, it } from "node:test";

const probe = (name: string) => spawnSync(process.execPath, ["--import", "tsx", path.join(__dirname, "harness-probe.ts"), name], { encoding: "utf8" });

describe("mock harness", () => {
  it("settles a program made of resource types it knows (the probe can pass)", () => {
    const r = probe("known-resources");
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^settled: docker:index\/network:Network$/m);
  });

  it("refuses a provider call (what renders Helm charts and YAML) instead of answering with nothing", () => {
    const r = probe("provider-call");
    assert.equal(r.status, 1);
    assert.match(r.stdout, /refused: mock harness: unexpected provider call kubernetes:yaml:decode/);
  });

  it("refuses a YAML group, whose children would be silently empty under naive mocks", () => {
    const r = probe("yaml-group");
    assert.equal(r.status, 1);
    assert.match(r.stdout, /refused: mock harness: unexpected provider call kubernetes:yaml:decode/);
  });

  it("refuses a resource type whose computed outputs it cannot fill", () => {
    const r = probe("unknown-type");
    assert.equal(r.status, 1);
    assert.match(r.stdout, /refused: mock harness: unknown resource type docker:index\/image:Image \(app\)/);
  });
});
