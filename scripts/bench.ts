/**
 * npm run bench: the local stack's start-up time for the PostgreSQL pair (goal: under 5 s on a 2-core
 * machine), against a baseline measured in the same run: one bare PostgreSQL server (initdb + start),
 * the least any pair could cost. Prints figures; asserts nothing (tests assert behaviour, not speed).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { cleanStack, startStack, stopStack } from "./local-stack/stack";
import { postgresBinDir } from "./local-stack/postgres";
import { giveToServiceUser, postmasterPid, run, stopPid } from "./local-stack/process";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Baseline: initdb and start of a single server, no replication, no roles. */
async function bareServer(dir: string, port: number): Promise<number> {
  const data = path.join(dir, "data");
  giveToServiceUser(dir);
  const ms = await time(async () => {
    await run(path.join(postgresBinDir(), "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync"], { asServiceUser: true });
    await run(path.join(postgresBinDir(), "pg_ctl"), ["start", "-w", "-s", "-D", data, "-l", path.join(dir, "log"), "-o", `-c port=${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir}`], { asServiceUser: true });
  });
  const pid = postmasterPid(data);
  if (pid) await stopPid(pid, "SIGINT");
  return ms;
}

async function main(): Promise<void> {
  const root = mkdtempSync(path.join(tmpdir(), "shopfds-bench-"));
  giveToServiceUser(root);
  const p = { name: "bench", dir: path.join(root, "stack"), portBase: 45400 };
  const baseline: number[] = [];
  const cold: number[] = [];
  const warm: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const dir = path.join(root, `bare-${i}`);
      mkdirSync(dir);
      baseline.push(await bareServer(dir, 45490));
      cold.push(await time(() => startStack(p)));
      await stopStack(p);
      warm.push(await time(() => startStack(p)));
      await cleanStack(p);
      process.stderr.write(`run ${i + 1}/${RUNS}: baseline ${fmt(baseline[i])}, pair cold ${fmt(cold[i])}, pair warm ${fmt(warm[i])}\n`);
    }
  } finally {
    await cleanStack(p);
    rmSync(root, { recursive: true, force: true });
  }
  const b = median(baseline);
  console.log(`local stack start-up, PostgreSQL primary + 1 streaming replica (median of ${RUNS})`);
  console.log(`  baseline: one bare server (initdb + start)      ${fmt(b)}`);
  console.log(`  pair, cold (initdb, roles, pg_basebackup, wait) ${fmt(median(cold))}  ×${(median(cold) / b).toFixed(2)} baseline  goal < 5 s: ${median(cold) < 5000 ? "met" : "NOT met"}`);
  console.log(`  pair, warm (data kept, both restarted, wait)    ${fmt(median(warm))}  ×${(median(warm) / b).toFixed(2)} baseline`);
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).message}`);
  process.exit(1);
});
