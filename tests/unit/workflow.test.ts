/**
 * Layer 1: the CI workflow is a valid GitHub Actions workflow (action-validator's schema check), and its
 * deployment runs the migrations before `pulumi up`, after the tests and the migration round trip.
 */
import assert from "node:assert/strict";
import { execSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { validateWorkflow } from "@action-validator/core";
import { parse } from "yaml";

const text = readFileSync(path.resolve(__dirname, "../../.github/workflows/ci.yml"), "utf8");

/** A script's text, and where in it each expected command stands (failing when one is missing). */
function scriptSteps(name: string): { script: string; at: (command: string) => number } {
  const script = readFileSync(path.resolve(__dirname, "../../scripts", name), "utf8");
  return {
    script,
    at: (command) => {
      const i = script.indexOf(command);
      assert.ok(i >= 0, `${name} runs ${command}`);
      return i;
    },
  };
}

describe("CI workflow", () => {
  it("passes the GitHub Actions workflow schema", () => {
    assert.deepEqual(validateWorkflow(text).errors, []);
  });

  it("the schema check can fail: a job without runs-on is reported", () => {
    assert.ok(validateWorkflow("on: push\njobs:\n  broken:\n    steps:\n      - run: true\n").errors.length > 0);
  });

  it("deploys only from main: staging then prod through the guarded deploy, gated by the tests, the migrations and both end-to-end runs", () => {
    const wf = parse(text);
    assert.equal(wf.jobs.deploy, undefined, "no unguarded deploy job");
    assert.deepEqual(wf.jobs["deploy-staging"].needs, ["test", "migrations", "image", "e2e-kind", "e2e-docker"]);
    assert.deepEqual(wf.jobs["deploy-prod"].needs, ["deploy-staging"], "prod only after staging passed its smoke test");
    for (const [job, stack, mode] of [["deploy-staging", "staging", "full"], ["deploy-prod", "prod", "safe"]] as const) {
      const j = wf.jobs[job];
      assert.match(j.if, /github\.event_name == 'push' && github\.ref == 'refs\/heads\/main'/);
      const runs = j.steps.map((s: { run?: string }) => s.run ?? "");
      // The runner cannot reach a cluster-internal primary; the program's migration Job runs inside it,
      // before the workloads (tests/pulumi/prod-stack.test.ts, "migrations").
      assert.ok(!runs.some((r: string) => /migrate\.ts/.test(r)), "no migration from the runner");
      assert.ok(!runs.some((r: string) => /pulumi (up|config)/.test(r)), "pulumi up only through deploy.ts, which can roll it back");
      const env = runs.indexOf(`bash scripts/ci/deploy-env.sh ${stack}`);
      const deploy = runs.findIndex((r: string) => r.startsWith("node --import tsx scripts/ci/deploy.ts"));
      assert.ok(env >= 0 && deploy > env, `${job}: secrets checked, then the guarded deploy`);
      assert.equal(runs[deploy], `node --import tsx scripts/ci/deploy.ts --stack ${stack} --image "ghcr.io/shopfds/shopfds-service:\${{ github.sha }}" --commit "\${{ github.sha }}" --smoke-mode ${mode} --backup-dir "$RUNNER_TEMP/state"`);
      assert.equal(j.steps[deploy].env.SLACK_WEBHOOK_URL, "${{ secrets.SLACK_DEPLOY_WEBHOOK }}", "the outcome goes to Slack");
      const keep = j.steps.find((s: { uses?: string }) => s.uses?.startsWith("actions/upload-artifact"));
      assert.equal(keep?.if, "always()", "the state backup is kept even when the deploy fails");
    }
    const build = wf.jobs.image.steps.find((s: { uses?: string }) => s.uses?.startsWith("docker/build-push-action"));
    assert.match(build.with.tags, /:\$\{\{ github\.sha \}\}/, "the image job pushes the tag deploy pins");
    assert.equal(build.with.push, "${{ github.event_name == 'push' }}", "pull requests build the image without pushing it");
    assert.deepEqual(wf.jobs.migrations.steps.slice(-3).map((s: { run: string }) => s.run), ["node --import tsx service/bin/migrate.ts up", "node --import tsx service/bin/migrate.ts down --all", "node --import tsx service/bin/migrate.ts up"]);
    assert.deepEqual(wf.jobs.preview.strategy.matrix.stack, ["dev", "staging", "prod"]);
  });

  it("runs the prod program end to end on kind: cluster, pulumi up, smoke test, destroy even on failure", () => {
    const wf = parse(text);
    const job = wf.jobs["e2e-kind"];
    assert.deepEqual(job.needs, ["test"]);
    const uses = job.steps.map((s: { uses?: string }) => s.uses).filter(Boolean);
    assert.ok(uses.includes("helm/kind-action@v1") && uses.includes("pulumi/actions@v6"), `tools: ${uses.join(", ")}`);
    assert.equal(job.steps.find((s: { uses?: string }) => s.uses === "helm/kind-action@v1").with.install_only, true, "the script creates the cluster from its own config");
    assert.equal(job.steps.at(-1).run, "bash scripts/e2e-kind.sh", "the same script as make e2e-kind");
    const { script, at } = scriptSteps("e2e-kind.sh");
    assert.ok(at("kind create cluster --config scripts/kind/cluster.yaml") < at("trap cleanup EXIT"));
    assert.ok(at("trap cleanup EXIT") < at('pulumi up --yes --stack "$STACK"'));
    assert.ok(at('pulumi up --yes --stack "$STACK"') < at("node --import tsx scripts/smoke.ts --target kind"));
    assert.ok(at("cleanup() {") < at('pulumi destroy --yes --stack "$STACK"') && at('pulumi destroy --yes --stack "$STACK"') < at("trap cleanup EXIT"), "destroy is in the exit trap");
    assert.match(script, /^STACK=kind$/m);
    assert.ok(at('cp "Pulumi.$STACK.yaml" "$KEPT"') < at("trap cleanup EXIT") && at('cp "$KEPT" "Pulumi.$STACK.yaml"') < at("trap cleanup EXIT"), "the checkout's stack file is kept aside and put back");
    assert.match(readFileSync(path.resolve(__dirname, "../../Makefile"), "utf8"), /^e2e-kind:.*\n\tbash scripts\/e2e-kind\.sh$/m);
  });

  it("runs the dev program end to end on the runner's Docker engine: image from the commit, pulumi up, smoke test, destroy even on failure", () => {
    const wf = parse(text);
    const job = wf.jobs["e2e-docker"];
    assert.deepEqual(job.needs, ["test"]);
    assert.ok(job.steps.some((s: { uses?: string }) => s.uses === "pulumi/actions@v6"), "the Pulumi CLI");
    assert.equal(job.steps.at(-1).run, "bash scripts/e2e-docker.sh", "the same script as make e2e-docker");
    const { script, at } = scriptSteps("e2e-docker.sh");
    assert.match(script, /^STACK=dev$/m);
    assert.match(script, /^IMAGE=shopfds-service:dev$/m, "the tag Pulumi.dev.yaml runs");
    assert.equal(parse(readFileSync(path.resolve(__dirname, "../../Pulumi.dev.yaml"), "utf8")).config["shopfds:jobs"].image, "shopfds-service:dev");
    assert.ok(at('docker build -t "$IMAGE" .') < at('pulumi up --yes --stack "$STACK"'));
    assert.ok(at("trap cleanup EXIT") < at('pulumi up --yes --stack "$STACK"'));
    assert.ok(at("--path shopfds:logging.enabled true") < at('pulumi up --yes --stack "$STACK"'), "logging on, so the log step runs");
    assert.ok(at('pulumi up --yes --stack "$STACK"') < at('node --import tsx scripts/smoke.ts --target docker --stack "$STACK"'));
    assert.ok(at("cleanup() {") < at('pulumi destroy --yes --stack "$STACK"') && at('pulumi destroy --yes --stack "$STACK"') < at("trap cleanup EXIT"), "destroy is in the exit trap");
    assert.ok(at('cp "$KEPT" Pulumi.dev.yaml') < at("trap cleanup EXIT"), "the checkout's stack file is put back");
    assert.match(readFileSync(path.resolve(__dirname, "../../Makefile"), "utf8"), /^e2e-docker:.*\n\tbash scripts\/e2e-docker\.sh$/m);
  });

  it("the smoke test checks each thing the issues name, on both targets", () => {
    const smoke = readFileSync(path.resolve(__dirname, "../../scripts/smoke.ts"), "utf8");
    const steps = [...smoke.matchAll(/await step\((\d), "([^"]+)"/g)].map((m) => `${m[1]} ${m[2]}`);
    assert.deepEqual(steps, [
      "1 the service is ready",
      "2 an order is placed and read back from a replica",
      "2 the FDS decides within its target (safe mode: no order placed)",
      "3 a blacklisted IP is blocked",
      "4 a task goes through a worker",
      "5 a request's log line is found in Elasticsearch by its trace id within 10 s (safe mode: nothing taken down)",
      "5 an error log line is found in Elasticsearch by its trace id within 10 s (SC-006)",
      "6 an alert is visible in Alertmanager",
    ]);
    // Safe mode (production) seeds nothing, places no order and stops nothing.
    const safeOnly = smoke.slice(smoke.indexOf("async function main("));
    assert.match(safeOnly, /if \(!safe\) await target\.inService\(imageCommand\("seed", "--if-empty"\)\);/);
    assert.match(safeOnly, /else if \(safe\)\n\s+await step\(5, "a request's log line/, "the broker is never stopped in safe mode");
    assert.match(smoke, /const targets: Record<string, \(\) => Target \| Promise<Target>> = \{ kind: \(\) => kindTarget\(\), docker: dockerTarget, kubernetes: \(\) => kindTarget\(stackCoordinates\(arg\("stack"\)\)\) \};/);
  });

  it("the smoke test finds a Kubernetes stack's context, namespace and prefix in its stack file, and refuses a Docker stack or a bad mode", () => {
    const smoke = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", path.resolve(__dirname, "../../scripts/smoke.ts"), ...args], { encoding: "utf8" });
    const docker = smoke("--target", "kubernetes", "--stack", "dev");
    assert.equal(docker.status, 1);
    assert.match(docker.stderr, /stack dev runs on docker, not Kubernetes: use --target docker/);
    const mode = smoke("--target", "kubernetes", "--stack", "prod", "--mode", "gentle");
    assert.equal(mode.status, 2);
    assert.equal(mode.stderr.trim(), '--mode must be full or safe (got "gentle")');
  });

  it("the smoke test refuses an unknown target, naming the ones it has", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", path.resolve(__dirname, "../../scripts/smoke.ts"), "--target", "compose"], { encoding: "utf8" });
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim(), '--target must be one of kind, docker, kubernetes (got "compose")');
  });

  for (const [target, message] of [
    ["e2e-kind", "e2e-kind: docker is required (Docker, kind, kubectl and the Pulumi CLI)"],
    ["e2e-docker", "e2e-docker: docker is required (a Docker engine and the Pulumi CLI)"],
  ] as const) {
    it(`make ${target} says which tool is missing, before touching anything`, () => {
      const bin = mkdtempSync(path.join(tmpdir(), `shopfds-${target}-path-`));
      try {
        symlinkSync(execSync("command -v dirname", { encoding: "utf8", shell: "/bin/bash" }).trim(), path.join(bin, "dirname"));
        const r = spawnSync("/bin/bash", [path.resolve(__dirname, `../../scripts/${target}.sh`)], { env: { PATH: bin }, encoding: "utf8" });
        assert.equal(r.status, 2);
        assert.equal(r.stderr.trim(), message);
      } finally {
        rmSync(bin, { recursive: true, force: true });
      }
    });
  }
});
