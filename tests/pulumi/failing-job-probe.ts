/**
 * Runs the dev program under the mocks with one one-shot job reported as exited 1 (argv[2]), the way the
 * Pulumi CLI's Node host would: a failed registration is an unhandled rejection, which fails the update.
 * Prints the names of the resources that were registered as JSON; exits 1 when the program failed.
 * (A child process: node's test runner would otherwise claim the rejection for itself.)
 */
import { MockHarness } from "./harness";

const failures: string[] = [];
process.on("unhandledRejection", (e) => failures.push(String((e as Error)?.message ?? e)));

async function main(): Promise<void> {
  const h = new MockHarness();
  h.failJob(process.argv[2]!);
  await h.install("dev");
  require("../../index");
  await h.settle();
  await new Promise((r) => setTimeout(r, 500));
  console.log(JSON.stringify({ resources: h.resources.map((r) => `${r.type} ${r.name}`), failures }));
  process.exit(failures.length > 0 ? 1 : 0);
}

void main();
