/**
 * The import closure of TypeScript entry points: every local file they load (static imports, `export …
 * from`, dynamic `import()` and `require()` of literal paths) and every package they name. Used to prove
 * that the service image holds what its processes load.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

const IMPORT = /(?:import|export)\s[^"';]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|require\(\s*["']([^"']+)["']\s*\)|^import\s+["']([^"']+)["']/gm;

export function importClosure(entries: readonly string[]): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const m of readFileSync(file, "utf8").matchAll(IMPORT)) {
      const spec = (m[1] ?? m[2] ?? m[3] ?? m[4])!;
      if (spec.startsWith(".")) {
        const base = path.resolve(path.dirname(file), spec);
        const found = [`${base}.ts`, path.join(base, "index.ts"), base].find((c) => c.endsWith(".ts") && existsSync(c));
        if (!found) throw new Error(`${file}: cannot resolve ${spec}`);
        visit(found);
      } else if (!spec.startsWith("node:")) {
        packages.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!);
      }
    }
  };
  for (const e of entries) visit(path.resolve(e));
  return { files: [...files].sort(), packages: [...packages].sort() };
}
