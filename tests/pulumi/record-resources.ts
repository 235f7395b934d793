/**
 * Prints what a stack's program declares under the mocks, one canonical record per resource (type,
 * name, parent, provider, dependencies, options, inputs), sorted: the resource snapshot that
 * resource-snapshot.test.ts compares with tests/fixtures/resources/<stack>.json. A refactoring that
 * moves code must leave it unchanged; a change meant to alter the stacks updates it on purpose
 * (`npm run snapshot:resources`), and the diff is part of the review.
 *
 * Usage: node --import tsx tests/pulumi/record-resources.ts <stack> [--logging]
 */
import { createHash } from "node:crypto";
import { MockHarness, stackSettings } from "./harness";

/** Strings longer than this are kept as their hash and length (rendered configs), so the files stay readable. */
const LONG = 240;

function canonical(v: unknown): unknown {
  if (typeof v === "string") return v.length > LONG ? `sha256:${createHash("sha256").update(v).digest("hex").slice(0, 16)} (${v.length} chars)` : v;
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}

/** A URN without the stack and project: `parentType$type::name`. */
const short = (urn: string): string => urn.replace(/^urn:pulumi:[^:]+::[^:]+::/, "");

async function main(): Promise<void> {
  const [stack, flag] = process.argv.slice(2);
  if (!stack) throw new Error("usage: record-resources.ts <stack> [--logging]");
  const h = new MockHarness();
  const config = flag === "--logging" ? { ...stackSettings(stack), "shopfds:logging": { ...(stackSettings(stack)["shopfds:logging"] as object), enabled: true } } : undefined;
  await h.runProgram(stack, config, config ? {} : undefined);
  const records = h.resources
    .map((r) => ({
      type: r.type,
      name: r.name,
      parent: short(r.parent),
      ...(r.provider ? { provider: r.provider.replace(/::[^:]*$/, "").replace(/^urn:pulumi:[^:]+::[^:]+::/, "") } : {}),
      dependencies: [...r.dependencies].map(short).sort(),
      protect: r.protect,
      retainOnDelete: r.retainOnDelete,
      ...(r.createTimeout ? { createTimeout: r.createTimeout } : {}),
      inputs: canonical(r.inputs),
    }))
    .sort((a, b) => `${a.type}::${a.name}`.localeCompare(`${b.type}::${b.name}`));
  // Exit only once the whole document is written: on a pipe, stdout is asynchronous, and exiting at
  // once cut a large stack's snapshot short (an "Unterminated string in JSON" in the snapshot test).
  process.stdout.write(JSON.stringify(records, null, 1) + "\n", () => process.exit(0));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
