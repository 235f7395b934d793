/**
 * Layer 1: the port blocks `make test` runs claim (scripts/lib/port-block.sh), exercised with bash on
 * a lock directory and candidate blocks of this test's own: two live runs never get the same block, a
 * block whose owner died is taken over, a block with a listener in it is skipped.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";

const ROOT = path.resolve(__dirname, "../..");
const locks = mkdtempSync(path.join(tmpdir(), "shopfds-port-locks-"));
// Far above anything the project listens on, so a real run on this machine cannot interfere.
const env = { ...process.env, PORT_BLOCK_LOCKS: locks, PORT_BLOCK_CANDIDATES: "40000 41000 42000" };
const holders: ChildProcess[] = [];
let server: Server | undefined;

/** A run that claims a block and stays alive (as test.sh does while its tests run). */
async function holder(): Promise<{ child: ChildProcess; block: number }> {
  const child = spawn("bash", ["-c", "source scripts/lib/port-block.sh && claim_port_block && echo $PORT_BLOCK && exec sleep 60"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "inherit"] });
  holders.push(child);
  const line = await new Promise<string>((resolve) => child.stdout!.once("data", (d) => resolve(String(d))));
  return { child, block: Number(line.trim()) };
}

const claimOnce = () => spawnSync("bash", ["-c", "source scripts/lib/port-block.sh && claim_port_block && echo $PORT_BLOCK"], { cwd: ROOT, env, encoding: "utf8" });

after(() => {
  for (const h of holders) h.kill("SIGKILL");
  server?.close();
  rmSync(locks, { recursive: true, force: true });
});

describe("test port blocks", () => {
  it("two live runs get different blocks; the block of a run that died is taken over; a block in use is skipped", async () => {
    const first = await holder();
    const second = await holder();
    assert.deepEqual([first.block, second.block], [40000, 41000]);
    assert.equal(readFileSync(path.join(locks, "40000", "pid"), "utf8").trim(), String(first.child.pid));

    first.child.kill("SIGKILL");
    await new Promise((r) => first.child.once("exit", r));
    server = createServer().listen(40005, "127.0.0.1");
    await new Promise((r) => server!.once("listening", r));
    const third = claimOnce();
    assert.equal(third.stdout.trim(), "42000", "40000 is free of its owner but has a listener; 41000 is held");

    server.close();
    await new Promise((r) => server!.once("close", r));
    const fourth = claimOnce();
    assert.equal(fourth.stdout.trim(), "40000", "the dead run's block is taken over once nothing listens there");
  });
});
