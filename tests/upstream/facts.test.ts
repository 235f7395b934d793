/**
 * Layer 2: the upstream facts (tests/fixtures/upstream/facts.yaml) against what the stacks declare.
 * Each fact names its source and the version it was read at; this file checks that the program still
 * pins that version (else it names the facts to read again), that every declared container, pod, Job,
 * workflow step and script obeys each `rule` fact, and that each rule rejects its negative case.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { before, describe, it } from "node:test";
import { parse } from "yaml";
import { pinnedVersions, versionMatches } from "./pins";
import { RULES } from "./rules";
import { loadWorld, ROOT, World } from "./world";

interface Fact {
  id: string;
  component: string;
  version: string;
  pin: string;
  fact: string;
  source: { repo: string; ref: string; path: string; lines: string | number };
  quote: string;
  checkedBy: "rule" | "budget";
}

const FACTS = (parse(readFileSync(path.join(ROOT, "tests/fixtures/upstream/facts.yaml"), "utf8")) as { facts: Fact[] }).facts;

/** The facts whose pinned component moved from the version they were read at, by pin. */
export function factsToReread(facts: readonly Fact[], pins: Map<string, string>): string[] {
  return facts
    .filter((f) => !versionMatches(f.version, pins.get(f.pin) ?? "(not pinned)"))
    .map((f) => `${f.id}: read at ${f.pin} ${f.version}, the program pins ${pins.get(f.pin) ?? "nothing"}: read ${f.source.repo} ${f.source.path} again`);
}

let world: World;
before(() => {
  world = loadWorld();
});

describe("upstream facts: recorded once, with their source and pinned version", () => {
  it("every fact says where it was read (repository, ref, file, lines, the words) and how it is checked", () => {
    assert.ok(FACTS.length >= 20, `${FACTS.length} facts`);
    assert.equal(new Set(FACTS.map((f) => f.id)).size, FACTS.length, "ids are unique");
    for (const f of FACTS) {
      for (const k of ["component", "version", "pin", "fact", "quote"] as const) assert.ok(String(f[k] ?? "").length > 0, `${f.id}: ${k}`);
      for (const k of ["repo", "ref", "path", "lines"] as const) assert.ok(String(f.source?.[k] ?? "").length > 0, `${f.id}: source.${k}`);
      assert.ok(f.checkedBy === "rule" || f.checkedBy === "budget", `${f.id}: checkedBy`);
    }
    const ruleFacts = FACTS.filter((f) => f.checkedBy === "rule").map((f) => f.id).sort();
    assert.deepEqual(Object.keys(RULES).sort(), ruleFacts, "one rule per rule fact, and no rule without its fact");
  });

  it("the program still pins every version the facts were read at", () => {
    assert.deepEqual(factsToReread(FACTS, pinnedVersions(world)), []);
  });

  it("a changed pin names the facts to read again (negative case)", () => {
    const pins = pinnedVersions(world);
    pins.set("docker.elastic.co/logstash/logstash", "8.15.0");
    pins.set("kubectl", "1.29.0");
    const reread = factsToReread(FACTS, pins).map((line) => line.split(":")[0]);
    assert.deepEqual(reread.sort(), FACTS.filter((f) => f.pin === "docker.elastic.co/logstash/logstash" || f.pin === "kubectl").map((f) => f.id).sort());
    assert.equal(versionMatches("1.30.0-1.36.3", "1.33.0"), true);
    assert.equal(versionMatches("1.30.0-1.36.3", "1.37.0"), false);
    assert.equal(versionMatches("7.17.18", "7.17.18,7.17.19"), false, "a component pinned at two versions is read at each");
  });
});

describe("upstream facts: every declared container, pod, Job, workflow step and script obeys them", () => {
  for (const [id, rule] of Object.entries(RULES)) {
    it(`${id}: the stacks obey it, and its negative case is rejected`, () => {
      assert.deepEqual(rule.check(world), [], `${id}: ${FACTS.find((f) => f.id === id)?.fact}`);
      const broken = rule.check(rule.negative(world));
      assert.ok(broken.length > 0, `${id}: the negative case must be rejected`);
      assert.deepEqual(rule.check(world), [], `${id}: the negative case left the real world unchanged`);
    });
  }
});
