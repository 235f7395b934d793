/**
 * The guarded deploy of one Kubernetes stack (the workflow's deploy-staging and deploy-prod jobs):
 *
 *   1. the last good release: the stack's `release` output of its last update ({ image, commit }: the
 *      image the workloads run and the commit whose program and stack file declared it);
 *   2. the state backed up (`pulumi stack export`, secrets stay encrypted) to --backup-dir, which the
 *      workflow keeps as an artifact;
 *   3. this commit's image pinned (`pulumi config set shopfds:jobs.image`) and `pulumi up`: inside the
 *      cluster the migration Job runs before any workload of the new image rolls out;
 *   4. the smoke test (scripts/smoke.ts --target kubernetes; `--smoke-mode safe` for production);
 *   5. a failed update or smoke test rolls back: the last good commit checked out beside this one
 *      (`git worktree`, its own `npm ci`), its stack file with the last good image pinned, `pulumi up`
 *      from there, and the smoke test once more; the job fails either way;
 *   6. the outcome posted to Slack (SLACK_WEBHOOK_URL; printed only when unset).
 *
 * A rollback is a forward update to what ran before, not `pulumi cancel` or a state import: the
 * program, the stack file and the image of the last good commit, so nothing the failed release changed
 * survives it. The database is the exception: migrations are never undone by a rollback (the previous
 * release's `migrate up` finds nothing to do, node-pg-migrate 9 ignoring applied migrations it does not
 * know), so every migration must keep the previous release working (expand, then contract a release
 * later: docs/operations.md).
 *
 * Usage: node --import tsx scripts/ci/deploy.ts --stack <staging|prod> --image <ref> --commit <sha>
 *          [--smoke-mode full|safe] [--backup-dir DIR]
 * The commands it runs can be replaced (the unit test runs it against stubs): PULUMI (default
 * `pulumi`), SMOKE_COMMAND (default `node --import tsx scripts/smoke.ts`, given `--target kubernetes
 * --stack S --mode M`), INSTALL_COMMAND (default `npm ci --no-audit --no-fund`, run in a rollback's
 * checkout).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

/** What a stack runs, as its `release` output records it. */
export interface Release {
  readonly image: string;
  /** The commit whose program and stack file declared it (absent for an image not built from a commit). */
  readonly commit?: string;
}

export type Failure = "update" | "smoke";

/** What to do once the update and the smoke test have answered. */
export type Decision =
  | { readonly action: "keep" }
  | { readonly action: "rollback"; readonly to: Release; readonly failed: Failure }
  | { readonly action: "fail"; readonly failed: Failure; readonly why: string };

/** The rollback decision, kept apart from the commands so the unit test can ask it directly. */
export function decide(result: { readonly updated: boolean; readonly smoke?: boolean }, last: Release | undefined, image: string): Decision {
  if (result.updated && result.smoke === true) return { action: "keep" };
  const failed: Failure = result.updated ? "smoke" : "update";
  if (!last) return { action: "fail", failed, why: "the stack has no earlier release to roll back to (its first deploy)" };
  if (last.image === image) return { action: "fail", failed, why: `the last good release runs this same image (${image}): rolling back would change nothing` };
  return { action: "rollback", to: last, failed };
}

/** The Slack message for an outcome (plain text, one line per fact). */
export function outcomeMessage(o: { stack: string; image: string; decision: Decision; rollback?: { updated: boolean; smoke?: boolean }; runUrl?: string }): string {
  const run = o.runUrl ? `\n${o.runUrl}` : "";
  const d = o.decision;
  if (d.action === "keep") return `:white_check_mark: ShopFDS ${o.stack}: deployed ${o.image}; the smoke test passed.${run}`;
  const what = d.failed === "update" ? "the update (pulumi up) failed" : "the smoke test failed";
  if (d.action === "fail") return `:x: ShopFDS ${o.stack}: ${what} for ${o.image}; not rolled back: ${d.why}.${run}`;
  const after = !o.rollback?.updated ? "the rollback's update FAILED too: the stack needs a person now" : o.rollback.smoke ? "the smoke test passes on it" : "the smoke test FAILS on it too: the stack needs a person now";
  return `:rotating_light: ShopFDS ${o.stack}: ${what} for ${o.image}; rolled back to ${d.to.image}${d.to.commit ? ` (commit ${d.to.commit.slice(0, 12)})` : ""}; ${after}.${run}`;
}

const say = (line: string) => console.log(`[deploy] ${line}`);

/** Runs a command, its output passed through; resolves with its exit code (and stdout when `capture`). */
function sh(argv: string[], opts: { cwd?: string; capture?: boolean } = {}): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, stdio: ["ignore", opts.capture ? "pipe" : "inherit", "inherit"] });
    let stdout = "";
    child.stdout?.on("data", (d) => (stdout += d));
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout }));
  });
}
const words = (command: string) => command.split(/\s+/).filter(Boolean);

async function postToSlack(text: string): Promise<void> {
  const url = process.env.SLACK_WEBHOOK_URL;
  if (!url) {
    say("SLACK_WEBHOOK_URL is not set: the outcome is only in this log");
    return;
  }
  try {
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text }), signal: AbortSignal.timeout(10_000) });
    if (!res.ok) say(`Slack answered ${res.status}: the message was not posted`);
  } catch (e) {
    // The outcome stands whether or not Slack heard of it; the webhook's address is a secret, never printed.
    say(`posting to Slack failed (${(e as Error).name}): the message was not posted`);
  }
}

function option(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? process.argv[i + 1] : fallback;
  if (value === undefined || value.startsWith("--")) {
    console.error(`deploy.ts: --${name} is required (usage: deploy.ts --stack <stack> --image <ref> --commit <sha> [--smoke-mode full|safe] [--backup-dir DIR])`);
    process.exit(2);
  }
  return value;
}

async function main(): Promise<number> {
  const stack = option("stack");
  const image = option("image");
  const commit = option("commit");
  const smokeMode = option("smoke-mode", "full");
  const backupDir = option("backup-dir", process.env.RUNNER_TEMP ?? tmpdir());
  if (!/^[a-z][a-z0-9-]*$/.test(stack)) throw new Error(`--stack must be a stack name such as staging (got "${stack}")`);
  if (!/^[0-9a-f]{40}$/.test(commit)) throw new Error(`--commit must be a full 40-character commit id (got "${commit}")`);
  if (smokeMode !== "full" && smokeMode !== "safe") throw new Error(`--smoke-mode must be full or safe (got "${smokeMode}")`);
  const pulumi = words(process.env.PULUMI ?? "pulumi");
  const smokeCommand = [...words(process.env.SMOKE_COMMAND ?? "node --import tsx scripts/smoke.ts"), "--target", "kubernetes", "--stack", stack, "--mode", smokeMode];
  const install = words(process.env.INSTALL_COMMAND ?? "npm ci --no-audit --no-fund");
  const runUrl = process.env.GITHUB_SERVER_URL && process.env.GITHUB_RUN_ID ? `${process.env.GITHUB_SERVER_URL}/${process.env.GITHUB_REPOSITORY}/actions/runs/${process.env.GITHUB_RUN_ID}` : undefined;

  // 1. The last good release (none on a first deploy, or from a program before the output existed).
  const out = await sh([...pulumi, "stack", "output", "release", "--stack", stack, "--json"], { capture: true });
  let last: Release | undefined;
  if (out.code === 0 && out.stdout.trim() && out.stdout.trim() !== "null") {
    const parsed = JSON.parse(out.stdout) as Release;
    last = { image: parsed.image, ...(parsed.commit ? { commit: parsed.commit } : {}) };
  }
  say(last ? `last good release of ${stack}: ${last.image}${last.commit ? ` (commit ${last.commit})` : ""}` : `${stack} has no release output yet: a failure cannot be rolled back`);

  // 2. The state, before anything changes.
  mkdirSync(backupDir, { recursive: true });
  const state = await sh([...pulumi, "stack", "export", "--stack", stack], { capture: true });
  if (state.code !== 0) throw new Error(`pulumi stack export --stack ${stack} exited ${state.code}: no update without a backup of the state`);
  const backup = path.join(backupDir, `pulumi-state-${stack}-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(backup, state.stdout, { mode: 0o600 });
  say(`state backed up to ${backup}`);

  // 3 and 4. This commit's image, the update, the smoke test.
  const pin = (img: string, cwd?: string) => sh([...pulumi, "config", "set", "--stack", stack, "--path", "shopfds:jobs.image", img], cwd ? { cwd } : {});
  const up = (cwd?: string) => sh([...pulumi, "up", "--yes", "--stack", stack], cwd ? { cwd } : {});
  const smoke = async () => (await sh(smokeCommand)).code === 0;
  if ((await pin(image)).code !== 0) throw new Error(`pulumi config set shopfds:jobs.image failed for ${stack}`);
  const updated = (await up()).code === 0;
  const result = { updated, ...(updated ? { smoke: await smoke() } : {}) };
  const decision = decide(result, last, image);
  say(`update ${updated ? "succeeded" : "failed"}${updated ? `, smoke test ${result.smoke ? "passed" : "failed"}` : ""}: ${decision.action}`);

  // 5. The rollback: the last good commit's program and stack file, its image.
  let rollback: { updated: boolean; smoke?: boolean } | undefined;
  if (decision.action === "rollback") {
    let cwd: string | undefined;
    let worktree: string | undefined;
    const to = decision.to;
    if (to.commit && to.commit !== commit) {
      if ((await sh(["git", "cat-file", "-e", `${to.commit}^{commit}`])).code !== 0) await sh(["git", "fetch", "--no-tags", "--depth=1", "origin", to.commit]);
      worktree = mkdtempSync(path.join(tmpdir(), `shopfds-rollback-${stack}-`));
      if ((await sh(["git", "worktree", "add", "--detach", worktree, to.commit])).code !== 0) throw new Error(`git worktree add ${to.commit} failed: cannot check out the last good release`);
      if ((await sh(install, { cwd: worktree })).code !== 0) throw new Error(`${install.join(" ")} failed in the last good release's checkout`);
      cwd = worktree;
    }
    say(`rolling ${stack} back to ${to.image}${cwd ? ` with the program and stack file of commit ${to.commit}` : " with this commit's program (the image names no commit)"}`);
    try {
      const pinned = (await pin(to.image, cwd)).code === 0;
      const rolledUp = pinned && (await up(cwd)).code === 0;
      rollback = { updated: rolledUp, ...(rolledUp ? { smoke: await smoke() } : {}) };
    } finally {
      if (worktree && existsSync(worktree)) await sh(["git", "worktree", "remove", "--force", worktree]);
    }
  }

  // 6. The team hears of it, whatever happened.
  const message = outcomeMessage({ stack, image, decision, ...(rollback ? { rollback } : {}), ...(runUrl ? { runUrl } : {}) });
  say(message.split("\n")[0]!);
  await postToSlack(message);
  return decision.action === "keep" ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(__filename)) {
  main().then(
    (code) => (process.exitCode = code),
    (e: Error) => {
      console.error(`[deploy] ${e.message}`);
      void postToSlack(`:x: ShopFDS deploy stopped before an outcome: ${e.message}`).finally(() => (process.exitCode = 1));
    },
  );
}
