/**
 * Layer 1: the workflow and the shell scripts are linted (actionlint, shellcheck) and the lint can
 * fail (a planted error in each); the CI jobs' pre-flight (scripts/ci/deploy-env.sh) names every
 * missing secret, kubeconfig and context. The Pulumi CLI cannot run here: deploy-env.sh's one call of
 * it (`pulumi config get`) is answered by a stand-in on PATH that knows a given set of keys.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { lintRepository, lintShell, lintWorkflow, ROOT } from "../../scripts/lint";

const tmp = mkdtempSync(path.join(tmpdir(), "shopfds-lint-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const workflow = readFileSync(path.join(ROOT, ".github/workflows/ci.yml"), "utf8");

describe("lint: the workflow (actionlint) and the shell scripts (shellcheck)", () => {
  it("the repository's workflows and shell scripts are clean", async () => {
    const findings = await lintRepository();
    assert.deepEqual(findings.map((f) => `${f.file}:${f.line}: ${f.message}`), []);
  });

  it("a planted workflow error fails the lint: a job that needs a job that does not exist, an unknown runner, a matrix property that does not exist", async () => {
    const planted = workflow
      .replace("needs: [test, migrations, image]", "needs: [test, migrations, imagee]")
      .replace("runs-on: ubuntu-24.04\n    timeout-minutes: 30", "runs-on: ubuntu-2404\n    timeout-minutes: 30")
      .replace('stack-name: ${{ matrix.stack }}', 'stack-name: ${{ matrix.stak }}');
    assert.notEqual(planted, workflow);
    const findings = await lintWorkflow(planted, "planted.yml");
    const kinds = new Set(findings.map((f) => f.kind));
    assert.ok(findings.some((f) => /imagee/.test(f.message)), JSON.stringify(findings));
    assert.ok(kinds.has("runner-label"), "an unknown runner label still fails (only today's GitHub labels are let through)");
    assert.ok(findings.some((f) => /"stak"/.test(f.message)), "a matrix property that does not exist");
  });

  it("a planted shell error fails the lint (an unquoted variable, a test that is always true)", () => {
    const script = path.join(tmp, "planted.sh");
    writeFileSync(script, '#!/usr/bin/env bash\nset -euo pipefail\nfile=$1\nrm -rf $file/*\nif [ -n $file ]; then echo yes; fi\n');
    const findings = lintShell([script], tmp);
    assert.ok(findings.some((f) => f.message.startsWith("SC2086")), JSON.stringify(findings));
    assert.ok(findings.length >= 2);
  });
});

/** Runs deploy-env.sh for `stack` with `env`, the stand-in `pulumi` knowing `keys`. */
function deployEnv(stack: string, env: Record<string, string>, keys: string[]) {
  const bin = mkdtempSync(path.join(tmp, "bin-"));
  writeFileSync(path.join(bin, "pulumi"), `#!/bin/sh\n# stand-in: pulumi config get --stack S KEY\nfor k in ${keys.map((k) => `'${k}'`).join(" ")}; do [ "$5" = "$k" ] && { echo value; exit 0; }; done\necho "error: configuration key '$5' not found for stack '$3'" >&2\nexit 255\n`);
  chmodSync(path.join(bin, "pulumi"), 0o755);
  const githubEnv = path.join(bin, "github-env");
  writeFileSync(githubEnv, "");
  const { PULUMI_ACCESS_TOKEN: _t, KUBECONFIG_DATA: _k, ...base } = process.env;
  const run = spawnSync("bash", [path.join(ROOT, "scripts/ci/deploy-env.sh"), stack], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...base, PATH: `${bin}:${process.env.PATH}`, RUNNER_TEMP: bin, GITHUB_ENV: githubEnv, ...env },
  });
  return { status: run.status, out: run.stdout + run.stderr, githubEnv: readFileSync(githubEnv, "utf8"), kubeconfig: path.join(bin, `kubeconfig-${stack}`) };
}

const kubeconfig = (context: string) => `apiVersion: v1\nkind: Config\nclusters: [{ name: c, cluster: { server: "https://127.0.0.1:1" } }]\nusers: [{ name: u, user: { token: t } }]\ncontexts: [{ name: ${context}, context: { cluster: c, user: u } }]\ncurrent-context: ${context}\n`;
const PROD_SECRETS = ["shopfds:slackWebhookUrl", "shopfds:smtpPassword", "shopfds:backupAccessKeyId", "shopfds:backupSecretAccessKey", "sentry:token"];

describe("CI pre-flight (scripts/ci/deploy-env.sh): the preview and deploy jobs fail naming what is missing", () => {
  it("without the token and the kubeconfig: names both repository secrets", () => {
    const r = deployEnv("prod", {}, PROD_SECRETS);
    assert.equal(r.status, 1);
    assert.match(r.out, /missing repository secret PULUMI_ACCESS_TOKEN .*shopfds\/prod/);
    assert.match(r.out, /missing repository secret KUBECONFIG_PROD .*context shopfds-prod/);
  });

  it("a kubeconfig without the stack's context is refused, naming the context", () => {
    const r = deployEnv("staging", { PULUMI_ACCESS_TOKEN: "pul-x", KUBECONFIG_DATA: kubeconfig("some-other-cluster") }, PROD_SECRETS);
    assert.equal(r.status, 1);
    assert.match(r.out, /missing context shopfds-staging in KUBECONFIG_STAGING/);
  });

  it("a secret setting the program needs and the stack lacks is named, with where it goes", () => {
    const r = deployEnv("prod", { PULUMI_ACCESS_TOKEN: "pul-x", KUBECONFIG_DATA: kubeconfig("shopfds-prod") }, PROD_SECRETS.filter((k) => k !== "sentry:token"));
    assert.equal(r.status, 1);
    assert.match(r.out, /missing secret setting sentry:token of stack prod/);
    assert.doesNotMatch(r.out, /slackWebhookUrl/);
  });

  it("with everything present: passes, the kubeconfig in a 0600 file that KUBECONFIG names for the next steps", () => {
    const r = deployEnv("prod", { PULUMI_ACCESS_TOKEN: "pul-x", KUBECONFIG_DATA: kubeconfig("shopfds-prod") }, PROD_SECRETS);
    assert.equal(r.status, 0, r.out);
    assert.equal(r.githubEnv.trim(), `KUBECONFIG=${r.kubeconfig}`);
    assert.equal(statSync(r.kubeconfig).mode & 0o777, 0o600);
    assert.doesNotMatch(r.out, /pul-x/, "the token is never printed");
  });

  it("the workflow runs the pre-flight before every preview and the deploy, with the stack's kubeconfig secret", () => {
    assert.match(workflow, /run: bash scripts\/ci\/deploy-env\.sh "\$\{\{ matrix\.stack \}\}"[\s\S]*KUBECONFIG_DATA: \$\{\{ secrets\[format\('KUBECONFIG_\{0\}', matrix\.stack\)\] \}\}[\s\S]*command: preview/);
    for (const stack of ["staging", "prod"])
      assert.match(workflow, new RegExp(`run: bash scripts/ci/deploy-env\\.sh ${stack}\\n\\s+env:\\n[^\\n]+\\n\\s+KUBECONFIG_DATA: \\$\\{\\{ secrets\\.KUBECONFIG_${stack.toUpperCase()} \\}\\}\\n\\s+- name: deploy, smoke test, roll back on failure\\n\\s+run: node --import tsx scripts/ci/deploy\\.ts --stack ${stack} `));
  });
});
