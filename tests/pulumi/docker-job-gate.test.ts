/**
 * Layer 2: on Docker, a one-shot job that exits non-zero fails the deployment with its output, and
 * nothing that depends on it is created (the Docker provider itself ignores a job's exit code). The
 * mocked provider reports the migration container as exited 1 (tests/pulumi/failing-job-probe.ts).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, it } from "node:test";

const probe = (job: string) => {
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(__dirname, "failing-job-probe.ts"), job], { encoding: "utf8", cwd: path.resolve(__dirname, "../..") });
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { resources: string[]; failures: string[] };
  return { status: r.status, ...out };
};

describe("dev stack: a failed one-shot job gates the deployment", () => {
  it("fails with the job's name, exit code and output, and creates nothing that waits for it", () => {
    const r = probe("shopfds-dev-migrate");
    assert.equal(r.status, 1, "the update fails");
    assert.ok(r.failures.some((m) => m.includes("one-shot job shopfds-dev-migrate exited with 1; its last output:\nerror: migration 0008 failed")), JSON.stringify(r.failures));
    const containers = r.resources.filter((x) => x.startsWith("docker:index/container:Container ")).map((x) => x.split(" ")[1]!);
    assert.ok(containers.includes("shopfds-dev-migrate"), "the job itself ran");
    assert.deepEqual(containers.filter((n) => /jobs-(worker|scheduler)|shopfds-dev-service/.test(n)), [], "no worker, scheduler or service");
    assert.ok(!r.resources.includes("random:index/randomId:RandomId shopfds-dev-migrate-succeeded"), "no success marker");
    assert.ok(r.resources.includes("random:index/randomId:RandomId shopfds-dev-redis-create-succeeded"), "a job that succeeded has its marker");
  });

  it("the same program with every job succeeding creates the workers after their jobs", () => {
    const r = probe("none");
    assert.equal(r.status, 0, JSON.stringify(r.failures));
    assert.ok(r.resources.includes("docker:index/container:Container shopfds-dev-jobs-worker-0"));
    assert.ok(r.resources.includes("random:index/randomId:RandomId shopfds-dev-migrate-succeeded"));
  });
});
