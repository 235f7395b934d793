/**
 * The guarded deploy (scripts/ci/deploy.ts): the rollback decision itself, then the script run as the
 * workflow runs it, against a stub `pulumi` and a stub smoke test (no cluster here), with a local HTTP
 * server standing in for Slack's webhook. The stubs record every command and the directory it ran in,
 * so the tests see what the rollback did: which commit's checkout, which image, in what order.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { decide, outcomeMessage } from "../../scripts/ci/deploy";

const ROOT = path.resolve(__dirname, "../..");
const IMAGE = (sha: string) => `ghcr.io/shopfds/shopfds-service:${sha}`;
const NEW = "f".repeat(40);

describe("the rollback decision", () => {
  const last = { image: IMAGE("a".repeat(40)), commit: "a".repeat(40) };
  it("keeps a release whose update and smoke test passed", () => {
    assert.deepEqual(decide({ updated: true, smoke: true }, last, IMAGE(NEW)), { action: "keep" });
  });
  it("rolls back to the last good release when the smoke test fails, or the update itself", () => {
    assert.deepEqual(decide({ updated: true, smoke: false }, last, IMAGE(NEW)), { action: "rollback", to: last, failed: "smoke" });
    assert.deepEqual(decide({ updated: false }, last, IMAGE(NEW)), { action: "rollback", to: last, failed: "update" });
  });
  it("fails without a rollback when there is nothing to go back to, saying why", () => {
    assert.deepEqual(decide({ updated: true, smoke: false }, undefined, IMAGE(NEW)), { action: "fail", failed: "smoke", why: "the stack has no earlier release to roll back to (its first deploy)" });
    const same = decide({ updated: false }, { image: IMAGE(NEW), commit: NEW }, IMAGE(NEW));
    assert.equal(same.action, "fail");
    assert.match((same as { why: string }).why, /runs this same image/);
  });
  it("says in the team's message what failed and where the stack stands", () => {
    assert.match(outcomeMessage({ stack: "prod", image: IMAGE(NEW), decision: { action: "rollback", to: last, failed: "smoke" }, rollback: { updated: true, smoke: false } }), /smoke test failed .* rolled back to .*aaaaaaaaaaaa.*FAILS on it too: the stack needs a person now/);
  });
});

/** A stub directory: `pulumi` and `smoke` scripts logging to `log`, Slack on a local port. */
interface Run {
  code: number;
  stdout: string;
  calls: { cwd: string; head: string; args: string }[];
  smokes: string[];
  slack: string[];
  backups: string[];
  dir: string;
}

describe("scripts/ci/deploy.ts against stubs", () => {
  const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
  let slack: Server;
  let slackUrl: string;
  let received: string[] = [];
  const dirs: string[] = [];
  before(async () => {
    slack = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        received.push((JSON.parse(body) as { text: string }).text);
        res.end("ok");
      });
    });
    await new Promise<void>((r) => slack.listen(0, "127.0.0.1", r));
    slackUrl = `http://127.0.0.1:${(slack.address() as AddressInfo).port}/services/T000/B000/XXXX`;
  });
  after(() => {
    slack.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /**
   * Runs deploy.ts with `release` as the stack's output (undefined: none), the smoke test failing on the
   * calls listed in `smokeFails` (1-based), and `pulumi up` failing on the calls in `upFails`.
   */
  function deploy(opts: { release?: object; smokeFails?: number[]; upFails?: number[]; extraEnv?: Record<string, string> }): Promise<Run> {
    const dir = mkdtempSync(path.join(tmpdir(), "shopfds-deploy-test-"));
    dirs.push(dir);
    writeFileSync(path.join(dir, "release.json"), opts.release ? JSON.stringify(opts.release) : "");
    writeFileSync(
      path.join(dir, "pulumi"),
      `#!/usr/bin/env bash
echo "$PWD|$(git rev-parse HEAD 2>/dev/null)|$*" >> "${dir}/pulumi.log"
case "$1 $2" in
  "stack output") if [ -s "${dir}/release.json" ]; then cat "${dir}/release.json"; else echo "error: current stack does not have output property 'release'" >&2; exit 255; fi ;;
  "stack export") echo '{"version":3,"deployment":{}}' ;;
  "up --yes") n=$(( $(cat "${dir}/up.count" 2>/dev/null || echo 0) + 1 )); echo $n > "${dir}/up.count"; for f in ${(opts.upFails ?? []).join(" ")}; do [ "$n" = "$f" ] && exit 255; done; exit 0 ;;
esac
exit 0
`,
      { mode: 0o755 },
    );
    writeFileSync(
      path.join(dir, "smoke"),
      `#!/usr/bin/env bash
n=$(( $(cat "${dir}/smoke.count" 2>/dev/null || echo 0) + 1 )); echo $n > "${dir}/smoke.count"
echo "$*" >> "${dir}/smoke.log"
for f in ${(opts.smokeFails ?? []).join(" ")}; do [ "$n" = "$f" ] && { echo "not ok - stub failure $n"; exit 1; }; done
echo "smoke test passed"
`,
      { mode: 0o755 },
    );
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts/ci/deploy.ts"), "--stack", "staging", "--image", IMAGE(NEW), "--commit", NEW, "--backup-dir", path.join(dir, "state")], {
      cwd: ROOT,
      env: { ...process.env, PULUMI: path.join(dir, "pulumi"), SMOKE_COMMAND: path.join(dir, "smoke"), INSTALL_COMMAND: "true", SLACK_WEBHOOK_URL: slackUrl, ...opts.extraEnv },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stdout += d));
    received = [];
    return new Promise((resolve) =>
      child.on("exit", (code) => {
        const lines = (f: string) => (existsSync(path.join(dir, f)) ? readFileSync(path.join(dir, f), "utf8").trim().split("\n") : []);
        resolve({
          code: code ?? -1,
          stdout,
          calls: lines("pulumi.log").map((l) => {
            const [cwd, h, args] = l.split("|");
            return { cwd: cwd!, head: h!, args: args! };
          }),
          smokes: lines("smoke.log"),
          slack: [...received],
          backups: existsSync(path.join(dir, "state")) ? readdirSync(path.join(dir, "state")).map((f) => path.join(dir, "state", f)) : [],
          dir,
        });
      }),
    );
  }
  const worktrees = () => execFileSync("git", ["worktree", "list", "--porcelain"], { cwd: ROOT, encoding: "utf8" });

  it("a passing smoke test keeps the release: image pinned, state backed up, one update, the team told", async () => {
    const r = await deploy({ release: { image: IMAGE(head), commit: head } });
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(r.calls.map((c) => c.args), ["stack output release --stack staging --json", "stack export --stack staging", `config set --stack staging --path shopfds:jobs.image ${IMAGE(NEW)}`, "up --yes --stack staging"]);
    assert.ok(r.calls.every((c) => c.cwd === ROOT), "everything ran in this checkout");
    assert.deepEqual(r.smokes, ["--target kubernetes --stack staging --mode full"]);
    assert.equal(r.backups.length, 1);
    assert.equal(statSync(r.backups[0]!).mode & 0o777, 0o600, "the state backup is readable by its owner only");
    assert.deepEqual(JSON.parse(readFileSync(r.backups[0]!, "utf8")), { version: 3, deployment: {} });
    assert.deepEqual(r.slack, [`:white_check_mark: ShopFDS staging: deployed ${IMAGE(NEW)}; the smoke test passed.`]);
  });

  it("a failing smoke test rolls back to the last good commit's program and stack file with its image, smoke-tests it, and fails the job", async () => {
    const r = await deploy({ release: { image: IMAGE(head), commit: head }, smokeFails: [1] });
    assert.equal(r.code, 1, r.stdout);
    const rollback = r.calls.slice(4);
    assert.deepEqual(rollback.map((c) => c.args), [`config set --stack staging --path shopfds:jobs.image ${IMAGE(head)}`, "up --yes --stack staging"]);
    for (const c of rollback) {
      assert.notEqual(c.cwd, ROOT, "the rollback runs from its own checkout");
      assert.equal(c.head, head, "…of the last good commit");
    }
    assert.equal(r.smokes.length, 2, "the rolled-back stack is smoke-tested too");
    assert.ok(!existsSync(rollback[0]!.cwd) && !worktrees().includes(rollback[0]!.cwd), "the rollback's checkout is removed afterwards");
    assert.equal(r.slack.length, 1);
    assert.match(r.slack[0]!, new RegExp(`^:rotating_light: ShopFDS staging: the smoke test failed for ${IMAGE(NEW)}; rolled back to ${IMAGE(head)} \\(commit ${head.slice(0, 12)}\\); the smoke test passes on it\\.$`));
  });

  it("a failed update rolls back too, without smoke-testing the release that never came up", async () => {
    const r = await deploy({ release: { image: IMAGE(head), commit: head }, upFails: [1] });
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.smokes.length, 1, "only the rolled-back stack is smoke-tested");
    assert.match(r.slack[0]!, /the update \(pulumi up\) failed .* rolled back to .* the smoke test passes on it/);
  });

  it("a rollback that fails as well says the stack needs a person", async () => {
    const r = await deploy({ release: { image: IMAGE(head), commit: head }, smokeFails: [1, 2] });
    assert.equal(r.code, 1);
    assert.match(r.slack[0]!, /FAILS on it too: the stack needs a person now/);
  });

  it("a first deploy that fails is not rolled back, and the message says why", async () => {
    const r = await deploy({ smokeFails: [1] });
    assert.equal(r.code, 1);
    assert.equal(r.calls.filter((c) => c.args.startsWith("up")).length, 1, "one update, no rollback");
    assert.match(r.slack[0]!, /^:x: ShopFDS staging: the smoke test failed for .*; not rolled back: the stack has no earlier release to roll back to \(its first deploy\)\.$/);
  });

  it("Slack unreachable changes no outcome and never prints the webhook's address", async () => {
    const r = await deploy({ release: { image: IMAGE(head), commit: head }, extraEnv: { SLACK_WEBHOOK_URL: "http://127.0.0.1:1/services/T000/B000/SECRETPART" } });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /posting to Slack failed \(TypeError\): the message was not posted/);
    assert.doesNotMatch(r.stdout, /SECRETPART/);
  });
});
