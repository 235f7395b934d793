/**
 * The local stack as a whole: profiles (dev for `make dev`, test for `make test`, on separate ports
 * and directories so they never collide), start/stop/status/clean, and the outputs file in the shape of
 * the stack-outputs contract.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { parseStackOutputs, StackOutputs } from "../../runtime/outputs";
import { LocalPostgresOptions, MemberStatus, postgresStatus, startPostgres, stopPostgres } from "./postgres";

export interface LocalStackProfile {
  readonly name: string;
  /** Everything the stack keeps: data, config, secrets, logs, outputs.json. */
  readonly dir: string;
  /** The stack's ports are offsets from this base (PostgreSQL primary at base + 32). */
  readonly portBase: number;
}

export const ROOT = path.resolve(__dirname, "../..");

/** dev: ports 154xx, `.local-stack/dev`; test: ports 354xx, `.local-stack/test`. Override with env. */
export function profile(name: string, env: NodeJS.ProcessEnv = process.env): LocalStackProfile {
  const defaults: Record<string, number> = { dev: 15400, test: 35400 };
  if (!(name in defaults)) throw new Error(`unknown local stack profile "${name}" (use dev or test)`);
  const base = env.SHOPFDS_LOCAL_PORT_BASE ? Number(env.SHOPFDS_LOCAL_PORT_BASE) : defaults[name];
  if (!Number.isInteger(base) || base < 1024 || base > 65000) throw new Error(`SHOPFDS_LOCAL_PORT_BASE must be an integer from 1024 to 65000 (got ${JSON.stringify(env.SHOPFDS_LOCAL_PORT_BASE)})`);
  return { name, dir: path.resolve(env.SHOPFDS_LOCAL_STACK_DIR ?? path.join(ROOT, ".local-stack", name)), portBase: base };
}

export function postgresOptions(p: LocalStackProfile): LocalPostgresOptions {
  return { dir: path.join(p.dir, "postgres"), primaryPort: p.portBase + 32, replicas: 1, database: "shopfds", user: "shopfds" };
}

export const outputsFile = (p: LocalStackProfile) => path.join(p.dir, "outputs.json");

export async function startStack(p: LocalStackProfile, log: (m: string) => void = () => {}): Promise<{ outputs: StackOutputs; timings: Record<string, number> }> {
  mkdirSync(p.dir, { recursive: true });
  const timings: Record<string, number> = {};
  let t = performance.now();
  const postgres = await startPostgres(postgresOptions(p), log);
  timings.postgres = performance.now() - t;
  // Validate what we write against the contract the services will read it with.
  const outputs = parseStackOutputs({ postgres }, "local stack outputs");
  writeFileSync(outputsFile(p), JSON.stringify(outputs, null, 2) + "\n", { mode: 0o600 });
  return { outputs, timings };
}

export async function stopStack(p: LocalStackProfile): Promise<string[]> {
  if (!existsSync(p.dir)) return [];
  return (await stopPostgres(postgresOptions(p))).map((n) => `postgres ${n}`);
}

/** Stops everything and removes the stack's directory. */
export async function cleanStack(p: LocalStackProfile): Promise<string[]> {
  const stopped = await stopStack(p);
  rmSync(p.dir, { recursive: true, force: true });
  return stopped;
}

export function stackStatus(p: LocalStackProfile): { postgres: MemberStatus[] } {
  return { postgres: existsSync(p.dir) ? postgresStatus(postgresOptions(p)) : [] };
}
