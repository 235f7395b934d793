/**
 * Layer 1: the import graph of the program, the runtime and the service (dependency-cruiser, type-only
 * imports included): no circles; no Kubernetes variant of a concern imports a Docker variant (each
 * concern's shared terms live in its own module); the runtime imports nothing of the program or the
 * service. The rules are proven able to fail on planted files.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";

const ROOT = path.resolve(__dirname, "../..");

/** The Docker variants; a Kubernetes variant (components/<concern>/kubernetes.ts, platform/kubernetes.ts, …) must not import them. */
const RULES = {
  forbidden: [
    { name: "no-circular", severity: "error", from: {}, to: { circular: true } },
    {
      name: "kubernetes-imports-no-docker-variant",
      severity: "error",
      from: { path: "^components/(.+/kubernetes\\.ts|platform/(operators|network-policies)\\.ts|monitoring/prometheus-stack\\.ts)$" },
      to: { path: "^components/(.+/docker\\.ts|redis/RedisCluster\\.ts)$" },
    },
    { name: "runtime-stands-alone", severity: "error", from: { path: "^runtime/" }, to: { path: "^(components|service|scripts|tests)/|^index\\.ts$" } },
  ],
};

type Violation = { rule: { name: string }; from: string; to: string; cycle?: { name: string }[] };

async function violations(cwd: string, roots: string[], tsConfig?: string): Promise<Violation[]> {
  const { cruise } = (await import("dependency-cruiser")) as unknown as { cruise: (files: string[], options: object, resolve?: object, transpile?: object) => Promise<{ output: { summary: { violations: Violation[] } } }> };
  const previous = process.cwd();
  process.chdir(cwd);
  try {
    const result = await cruise(
      roots,
      { ruleSet: RULES, validate: true, tsPreCompilationDeps: true, doNotFollow: { path: "node_modules" }, exclude: { path: "(^|/)(node_modules|dist)/|^tests/fixtures/" }, ...(tsConfig ? { tsConfig: { fileName: tsConfig } } : {}) },
      { extensions: [".ts", ".js", ".json"] },
      tsConfig ? { tsConfig: { fileName: tsConfig } } : undefined,
    );
    return result.output.summary.violations;
  } finally {
    process.chdir(previous);
  }
}

const describeViolation = (v: Violation) => `${v.rule.name}: ${v.from} → ${v.to}${v.cycle ? ` (${v.cycle.map((c) => c.name).join(" → ")})` : ""}`;

describe("import graph", () => {
  it("the program, the runtime and the service: no circles, no Kubernetes variant importing a Docker one, the runtime on its own", { timeout: 120_000 }, async () => {
    const found = await violations(ROOT, ["index.ts", "components", "runtime", "service", "scripts"], "tsconfig.json");
    assert.deepEqual(found.map(describeViolation), []);
  });

  it("fails on a planted circle (type-only), a Kubernetes variant importing a Docker one, and the runtime reaching into the program", { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "shopfds-graph-"));
    try {
      for (const d of ["components/postgres", "runtime/jobs"]) mkdirSync(path.join(dir, d), { recursive: true });
      writeFileSync(path.join(dir, "components/postgres/docker.ts"), "export const settings = 1;\n");
      writeFileSync(path.join(dir, "components/postgres/kubernetes.ts"), 'import { settings } from "./docker";\nexport const k = settings;\n');
      writeFileSync(path.join(dir, "runtime/jobs/worker.ts"), 'import type { Target } from "./remote-control";\nexport class Worker { t?: Target }\n');
      writeFileSync(path.join(dir, "runtime/jobs/remote-control.ts"), 'import type { Worker } from "./worker";\nimport { k } from "../../components/postgres/kubernetes";\nexport type Target = Worker;\nexport const x = k;\n');
      writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "nodenext", moduleResolution: "nodenext", strict: true } }));
      const rules = (await violations(dir, ["components", "runtime"], "tsconfig.json")).map((v) => v.rule.name).sort();
      assert.deepEqual([...new Set(rules)], ["kubernetes-imports-no-docker-variant", "no-circular", "runtime-stands-alone"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
