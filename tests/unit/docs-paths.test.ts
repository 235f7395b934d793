/**
 * Layer 1: the docs stay true. Every repository path written in backticks in README.md,
 * ARCHITECTURE.md and docs/ exists, and every `make X` they name is a target of the Makefile. Proven
 * able to fail on a planted stale path and a planted target.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";

const ROOT = path.resolve(__dirname, "../..");
const DOCS = ["README.md", "ARCHITECTURE.md", ...readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
/** What a path written from the repository's root starts with. */
const TOP = new Set(readdirSync(ROOT).filter((f) => !["node_modules", ".git", ".local-stack", "bin"].includes(f)));

/** The repository paths and make targets a document names in backticks. */
export function namedIn(text: string): { paths: string[]; targets: string[] } {
  const paths = new Set<string>();
  const targets = new Set<string>();
  for (const [, code] of text.matchAll(/`([^`\n]+)`/g)) {
    const token = code!.trim();
    for (const m of token.matchAll(/(?:^|[;&|(]\s*)make ([a-z][a-z0-9-]*)/g)) targets.add(m[1]!);
    if (/\s|[*<>{}$]|:\/\/|^-/.test(token)) continue; // a command, a glob, a placeholder, a URL, an option
    const candidate = token.replace(/:\d+(-\d+)?$/, "").replace(/[.,;:]$/, "");
    const first = candidate.replace(/^\.\//, "").split("/")[0]!;
    if (TOP.has(first) && (candidate.includes("/") || /\.[a-z]+$/.test(candidate) || first === "Makefile" || first === "Dockerfile")) paths.add(candidate.replace(/^\.\//, ""));
  }
  return { paths: [...paths], targets: [...targets] };
}

export const makeTargets = (makefile: string): Set<string> => new Set([...makefile.matchAll(/^([a-z][a-z0-9-]*):/gm)].map((m) => m[1]!));

export function staleIn(file: string, text: string, targets: Set<string>, exists: (p: string) => boolean): string[] {
  const named = namedIn(text);
  return [
    ...named.paths.filter((p) => !exists(p)).map((p) => `${file}: \`${p}\` does not exist`),
    ...named.targets.filter((t) => !targets.has(t)).map((t) => `${file}: \`make ${t}\` is not a Makefile target`),
  ];
}

describe("docs: every path and make target they name exists", () => {
  const targets = makeTargets(readFileSync(path.join(ROOT, "Makefile"), "utf8"));
  const exists = (p: string) => existsSync(path.join(ROOT, p));

  it("README.md, ARCHITECTURE.md and docs/*.md", () => {
    let named = 0;
    const stale: string[] = [];
    for (const file of DOCS) {
      const text = readFileSync(path.join(ROOT, file), "utf8");
      named += namedIn(text).paths.length;
      stale.push(...staleIn(file, text, targets, exists));
    }
    assert.ok(named >= 100, `paths checked: ${named}`);
    assert.deepEqual(stale, []);
  });

  it("a planted stale path and a planted target fail; commands, globs and placeholders are not paths (negative case)", () => {
    const text = "Run `make worker` or `make test`; see `scripts/worker.ts`, `runtime/db/router.ts:42`, `tests/**/*.test.ts`, `.local-stack/test-<base>/`, `npm ci`.";
    assert.deepEqual(staleIn("X.md", text, targets, exists), ["X.md: `scripts/worker.ts` does not exist", "X.md: `make worker` is not a Makefile target"]);
  });
});
