/**
 * Runs one stack's program under the mock harness and prints what it declared, as JSON on stdout:
 * every resource (type, name, inputs with secrets unwrapped, dependencies) and the exports the facts
 * are checked against. One program per process (the harness's mocks are global), so the upstream-facts
 * test runs this once per stack: `node --import tsx tests/upstream/snapshot.ts <stack> <out.json> [config JSON]`.
 */
import { writeFileSync } from "node:fs";
import { MockHarness, resolve, stackSettings } from "../pulumi/harness";

async function main(): Promise<void> {
  const [stack, out, override] = process.argv.slice(2);
  if (!stack || !out) throw new Error("usage: snapshot.ts <stack> <out.json> [config JSON merged over Pulumi.<stack>.yaml]");
  const h = new MockHarness();
  const config = override ? { ...stackSettings(stack), ...(JSON.parse(override) as Record<string, unknown>) } : undefined;
  const program = await h.runProgram(stack, config, config ? {} : undefined);
  const exported = {
    postgres: (await resolve(program.postgres as never)).value,
    grafana: program.grafana ? (await resolve(program.grafana.url as never)).value : undefined,
  };
  const resources = h.resources.map((r) => ({ type: r.type, name: r.name, inputs: r.inputs, dependencies: r.dependencies }));
  writeFileSync(out, JSON.stringify({ stack, exported, resources }));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
