/**
 * The service image (Dockerfile) cannot be built here (no Docker engine). What its shape must be is
 * checked from the sources here; tests/integration/packages.test.ts then repeats its install step and
 * starts what it would run.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { IMAGE_ENTRY_POINTS, imageCommand } from "../../components/service/image";
import { dockerfileRuns, ROOT } from "../support/packages";

const dockerfile = readFileSync(path.join(ROOT, "Dockerfile"), "utf8");
const finalStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));

/** Every command the Pulumi program and its components give a container of the service image. */
function programSources(): string[] {
  return [path.join(ROOT, "index.ts"), ...readdirSync(path.join(ROOT, "components"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts")).map((f) => path.join(ROOT, "components", f))];
}

describe("the service image", () => {
  it("its entry points are the service package's compiled JavaScript, one per source in service/bin", () => {
    for (const [name, file] of Object.entries(IMAGE_ENTRY_POINTS)) {
      assert.match(file, /^service\/dist\/bin\/[\w-]+\.js$/, name);
      assert.ok(existsSync(path.join(ROOT, file.replace("dist/", "").replace(/\.js$/, ".ts"))), `${name}: ${file} has its source`);
    }
  });

  it("the stacks run every ShopFDS process through imageCommand: nothing runs TypeScript or tsx in a container", () => {
    const tsx = programSources().filter((f) => /"--import",\s*"tsx"|"tsx"|\.ts"\s*[,\]]/.test(readFileSync(f, "utf8")));
    assert.deepEqual(tsx.map((f) => path.relative(ROOT, f)), []);
    const users = programSources().filter((f) => readFileSync(f, "utf8").includes("imageCommand("));
    assert.deepEqual(users.map((f) => path.relative(ROOT, f)).sort(), ["components/jobs/JobRunners.ts", "components/monitoring/SlackSink.ts", "components/service/Migrations.ts", "components/service/ShopService.ts", "components/service/image.ts"]);
  });

  it("builds both packages with tsc, then installs the service's production dependencies only (no optional TypeScript)", () => {
    assert.deepEqual(dockerfileRuns("build").slice(-2), [
      ["npm", "run", "build", "--workspace", "@shopfds/runtime"],
      ["npm", "run", "build", "--workspace", "@shopfds/service"],
    ]);
    const [install] = dockerfileRuns("deps");
    for (const flag of ["--omit=dev", "--omit=optional", "--include-workspace-root=false", "--ignore-scripts"]) assert.ok(install!.includes(flag), `${install!.join(" ")}: ${flag}`);
    assert.equal(install![install!.indexOf("--workspace") + 1], "@shopfds/service");
  });

  it("the final stage holds the production node_modules, the packages' manifests and dist folders, and nothing else", () => {
    const copies = [...finalStage.matchAll(/^COPY (.+)$/gm)].map((m) => m[1]);
    assert.deepEqual(copies, [
      "--from=deps /app/node_modules ./node_modules",
      "package.json ./",
      "runtime/package.json runtime/",
      "--from=build /app/runtime/dist runtime/dist",
      "service/package.json service/",
      "--from=build /app/service/dist service/dist",
    ]);
  });

  it("runs as the unprivileged node user (uid 1000, the stacks' runAs) and starts the service by default", () => {
    assert.match(finalStage, /^USER node$/m);
    assert.equal(/^CMD (.+)$/m.exec(finalStage)![1], JSON.stringify(imageCommand("service", "--port", "8080")).replace(/,/g, ", "));
    const ignored = readFileSync(path.join(ROOT, ".dockerignore"), "utf8").split("\n");
    for (const p of [".local-stack", "node_modules", ".git", "**/dist"]) assert.ok(ignored.includes(p), `.dockerignore keeps ${p} (secrets, data, stale builds) out of the build context`);
  });
});
