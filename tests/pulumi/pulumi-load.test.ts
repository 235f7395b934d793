/** `pulumi up` compiles index.ts with ts-node and type checking: the same load must succeed here. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, it } from "node:test";

const ROOT = path.resolve(__dirname, "../..");
const load = (program: string) => spawnSync(process.execPath, [path.join(__dirname, "load-like-pulumi.cjs"), program], { cwd: ROOT, encoding: "utf8" });

describe("Pulumi-style ts-node load", () => {
  it("type-checks and runs index.ts as the Pulumi CLI would", () => {
    const r = load("index.ts");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /loaded index\.ts with ts-node type checking; \d+ resources registered/);
  });

  it("fails on a program with a type error (the check can fail)", () => {
    const r = load("tests/fixtures/type-error-program.ts");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /TS2322: Type 'string' is not assignable to type 'number'/);
  });
});
