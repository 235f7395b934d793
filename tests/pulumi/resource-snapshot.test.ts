/**
 * Layer 2: what each stack declares (every resource's type, name, parent, provider, dependencies,
 * options and inputs, under the mocks) equals the reviewed snapshot in tests/fixtures/resources/. A
 * change that only moves code (components by concern, config, outputs) must leave every stack as it
 * was: a renamed resource, a new parent without an alias or a changed input is a replacement in a real
 * `pulumi up`. A change meant to alter the stacks rewrites the snapshot on purpose
 * (`npm run snapshot:resources`) and its diff is reviewed with the code.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ROOT } from "./harness";

export const SNAPSHOT_STACKS: readonly { file: string; args: string[] }[] = [
  { file: "dev", args: ["dev"] },
  { file: "dev-logging", args: ["dev", "--logging"] },
  { file: "staging", args: ["staging"] },
  { file: "prod", args: ["prod"] },
  { file: "kind", args: ["kind"] },
];

type Snapshot = { type: string; name: string; [k: string]: unknown }[];

export function record(args: string[]): string {
  return execFileSync(process.execPath, ["--import", "tsx", path.join(ROOT, "tests/pulumi/record-resources.ts"), ...args], { cwd: ROOT, encoding: "utf8", maxBuffer: 64 << 20 });
}

/** What differs between two snapshots, resource by resource (added, removed, changed and in which fields). */
export function snapshotDiff(expected: Snapshot, actual: Snapshot): string[] {
  const key = (r: { type: string; name: string }) => `${r.type}::${r.name}`;
  const before = new Map(expected.map((r) => [key(r), r]));
  const after = new Map(actual.map((r) => [key(r), r]));
  const out: string[] = [];
  for (const [k, r] of before) {
    const now = after.get(k);
    if (!now) out.push(`removed ${k}`);
    else {
      const fields = [...new Set([...Object.keys(r), ...Object.keys(now)])].filter((f) => JSON.stringify(r[f]) !== JSON.stringify(now[f]));
      if (fields.length > 0) out.push(`changed ${k}: ${fields.join(", ")}`);
    }
  }
  for (const k of after.keys()) if (!before.has(k)) out.push(`added ${k}`);
  return out;
}

describe("resource snapshot: every stack declares what the reviewed snapshot says", () => {
  for (const { file, args } of SNAPSHOT_STACKS) {
    it(`${file}: the same resources, names, parents and inputs`, () => {
      const fixture = path.join(ROOT, "tests/fixtures/resources", `${file}.json`);
      const actual = JSON.parse(record(args)) as Snapshot;
      if (process.env.UPDATE_RESOURCE_SNAPSHOT === "1") writeFileSync(fixture, JSON.stringify(actual, null, 1) + "\n");
      const expected = JSON.parse(readFileSync(fixture, "utf8")) as Snapshot;
      assert.ok(expected.length > 50, `${file}: ${expected.length} resources in the snapshot`);
      assert.deepEqual(snapshotDiff(expected, actual), [], `${file} differs from tests/fixtures/resources/${file}.json (npm run snapshot:resources rewrites it on purpose)`);
    });
  }

  it("a renamed resource, a changed input and a new parent are each seen (negative case)", () => {
    const base: Snapshot = [
      { type: "t:a", name: "x", parent: "p", inputs: { image: "i:1" } },
      { type: "t:b", name: "y", parent: "p", inputs: {} },
    ];
    assert.deepEqual(snapshotDiff(base, [{ ...base[0]!, name: "x2" }, base[1]!]), ["removed t:a::x", "added t:a::x2"]);
    assert.deepEqual(snapshotDiff(base, [{ ...base[0]!, inputs: { image: "i:2" } }, base[1]!]), ["changed t:a::x: inputs"]);
    assert.deepEqual(snapshotDiff(base, [base[0]!, { ...base[1]!, parent: "q" }]), ["changed t:b::y: parent"]);
  });
});
