/**
 * The service image (Dockerfile) cannot be built here (no Docker engine), so what would break it is
 * checked from the sources: every script the stacks run from the image exists and is copied into it,
 * every file those scripts load is copied, every package they load is a production dependency (the
 * image installs with --omit=dev), and the image runs as the uid the stacks expect.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { importClosure } from "../support/imports";

const ROOT = path.resolve(__dirname, "../..");
const dockerfile = readFileSync(path.join(ROOT, "Dockerfile"), "utf8");
const finalStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
const copied = [...finalStage.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));

/** Every `scripts/….ts` the Pulumi program and its components run inside the service image. */
function scriptsTheStacksRun(): string[] {
  const sources = [path.join(ROOT, "index.ts"), ...readdirSync(path.join(ROOT, "components"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts")).map((f) => path.join(ROOT, "components", f))];
  const found = new Set<string>();
  for (const f of sources) for (const m of readFileSync(f, "utf8").matchAll(/"(scripts\/[\w/.-]+\.ts)"/g)) found.add(m[1]!);
  return [...found].sort();
}

const inImage = (file: string) => copied.some((c) => file === c || file.startsWith(`${c.replace(/\/$/, "")}/`));

describe("the service image", () => {
  it("the stacks run the service, worker, scheduler, migrations and the dev Slack sink from it, and each script exists", () => {
    const scripts = scriptsTheStacksRun();
    assert.deepEqual(scripts, ["scripts/local-stack/webhook-sink-server.ts", "scripts/migrate.ts", "scripts/scheduler.ts", "scripts/service.ts", "scripts/worker.ts"]);
    for (const s of scripts) assert.ok(existsSync(path.join(ROOT, s)), s);
  });

  it("copies every file those scripts load, and the migrations node-pg-migrate reads at run time", () => {
    const { files } = importClosure(scriptsTheStacksRun().map((s) => path.join(ROOT, s)));
    const missing = files.map((f) => path.relative(ROOT, f)).filter((f) => !inImage(f));
    assert.deepEqual(missing, []);
    assert.ok(inImage("migrations/0001_commerce.ts"));
    for (const c of copied) assert.ok(existsSync(path.join(ROOT, c)), `COPY ${c}: no such file`);
  });

  it("installs only production dependencies, and every package the scripts load is one (tsx included)", () => {
    assert.match(dockerfile, /npm ci --omit=dev/);
    const { packages } = importClosure(scriptsTheStacksRun().map((s) => path.join(ROOT, s)));
    const notProduction = [...packages, "tsx"].filter((p) => !(p in pkg.dependencies));
    assert.deepEqual(notProduction, []);
  });

  it("runs as the unprivileged node user (uid 1000, the stacks' runAs) and starts the service by default", () => {
    assert.match(finalStage, /^USER node$/m);
    assert.match(finalStage, /^CMD \["node", "--import", "tsx", "scripts\/service.ts", "--port", "8080"\]$/m);
    const ignored = readFileSync(path.join(ROOT, ".dockerignore"), "utf8").split("\n");
    for (const p of [".local-stack", "node_modules", ".git"]) assert.ok(ignored.includes(p), `.dockerignore keeps ${p} (secrets, data) out of the build context`);
  });

  it("the closure check follows re-exports into packages, and fails on an import it cannot resolve", () => {
    const fixtures = path.join(ROOT, "tests/fixtures/image-closure");
    const ok = importClosure([path.join(fixtures, "ok.ts")]);
    assert.deepEqual([ok.files.map((f) => path.basename(f)), ok.packages], [["lib.ts", "ok.ts"], ["zod"]]);
    assert.throws(() => importClosure([path.join(fixtures, "broken.ts")]), /broken\.ts: cannot resolve \.\/missing/);
  });
});
