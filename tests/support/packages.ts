/**
 * Test support for the packages: building them (tsc, as the image's build stage does), the imports a
 * package's sources make (to prove the runtime reaches nothing outside itself), and a command of the
 * Dockerfile (so a test runs the image's very install step, not a copy that could drift from it).
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";

export const ROOT = path.resolve(__dirname, "../..");

/** Builds @shopfds/runtime and @shopfds/service into their dist/ folders (npm run build). */
export function buildPackages(): void {
  execFileSync("npm", ["run", "--silent", "build"], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
}

const IMPORT = /(?:import|export)\s[^"';]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|require\(\s*["']([^"']+)["']\s*\)|^import\s+["']([^"']+)["']/gm;

/** Every `.ts` source of a folder, recursively, leaving out dist/ and node_modules/. */
export function sourcesOf(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.split(path.sep).some((part) => part === "dist" || part === "node_modules"))
    .map((f) => path.join(dir, f))
    .sort();
}

/**
 * What a package's sources import that it may not: a relative import resolving outside `dir`, or a
 * package that is neither a Node.js built-in nor among `allowed` (its package.json's dependencies).
 * Each problem names the file and the specifier.
 */
export function importProblems(dir: string, allowed: readonly string[]): string[] {
  const problems: string[] = [];
  const builtins = new Set(builtinModules);
  for (const file of sourcesOf(dir)) {
    for (const m of readFileSync(file, "utf8").matchAll(IMPORT)) {
      const spec = (m[1] ?? m[2] ?? m[3] ?? m[4])!;
      const where = path.relative(ROOT, file);
      if (spec.startsWith(".")) {
        const target = path.resolve(path.dirname(file), spec);
        if (path.relative(dir, target).startsWith("..")) problems.push(`${where}: ${spec} reaches outside ${path.relative(ROOT, dir)}/`);
      } else {
        const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
        if (!spec.startsWith("node:") && !builtins.has(name) && !allowed.includes(name)) problems.push(`${where}: ${spec} is not a dependency of the package`);
      }
    }
  }
  return problems;
}

/** The `RUN` commands of one stage of the Dockerfile (`FROM … AS <stage>`), as argument lists. */
export function dockerfileRuns(stage: string): string[][] {
  const text = readFileSync(path.join(ROOT, "Dockerfile"), "utf8").replace(/\\\n\s*/g, " ");
  const stages = text.split(/^FROM /m).slice(1);
  const found = stages.find((s) => new RegExp(`^\\S+ AS ${stage}\\b`).test(s));
  if (!found) throw new Error(`Dockerfile: no stage named ${stage}`);
  return [...found.matchAll(/^RUN (.+)$/gm)].flatMap((m) => m[1]!.split("&&").map((c) => c.trim().split(/\s+/)));
}
