/**
 * The local stack's PostgreSQL pair: a real primary and streaming replicas on loopback, started from
 * the same renderers (postgresql.conf, pg_hba.conf, primary init SQL, replica bootstrap) that the
 * Docker and Kubernetes backends ship.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { DEFAULT_REPLICATION_USER, renderPgHba, renderPostgresConf, renderPrimaryInitSql, renderReplicaBootstrap, replicationSlotName } from "../../components/postgres/render";
import type { PostgresOutputs } from "../../runtime/outputs";
import { giveToServiceUser, postmasterPid, run, stopPid, waitFor } from "./process";

export interface LocalPostgresOptions {
  /** Directory holding every member's data, config, socket and log. */
  readonly dir: string;
  /** Port of the primary; replica `i` (from 1) listens on `primaryPort + i`. */
  readonly primaryPort: number;
  readonly replicas: number;
  readonly database: string;
  readonly user: string;
  /**
   * Replica `i` listens on `replicaHosts[i - 1]` (a loopback address such as 127.0.0.2), every replica on
   * the same port, `primaryPort + 1`: replicas behind one DNS name, as pods behind a headless Service.
   */
  readonly replicaHosts?: readonly string[];
}

export interface MemberStatus {
  readonly name: string;
  readonly role: "primary" | "replica";
  readonly port: number;
  readonly pid?: number;
}

type Log = (message: string) => void;
const HOST = "127.0.0.1";
const SECRETS = ["superuser", "app", "replication"] as const;

/** The PostgreSQL server binaries: PG_BINDIR, else the newest /usr/lib/postgresql/<version>/bin (≥ 15). */
export function postgresBinDir(): string {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .map(Number)
        .filter((v) => v >= 15 && existsSync(`${root}/${v}/bin/postgres`))
        .sort((a, b) => b - a)
    : [];
  if (versions.length === 0) throw new Error(`no PostgreSQL ≥ 15 server under ${root}; run \`make setup\` (installs postgresql-15) or set PG_BINDIR`);
  return `${root}/${versions[0]}/bin`;
}

export function memberNames(replicas: number): string[] {
  return ["primary", ...Array.from({ length: replicas }, (_, i) => `replica-${i + 1}`)];
}

function memberPort(opts: LocalPostgresOptions, name: string): number {
  if (name === "primary") return opts.primaryPort;
  return opts.replicaHosts ? opts.primaryPort + 1 : opts.primaryPort + Number(name.slice("replica-".length));
}

export function memberHost(opts: LocalPostgresOptions, name: string): string {
  if (name === "primary" || !opts.replicaHosts) return HOST;
  const host = opts.replicaHosts[Number(name.slice("replica-".length)) - 1];
  if (!host) throw new Error(`replicaHosts: no address for ${name} (${opts.replicaHosts.length} given)`);
  return host;
}

const memberDir = (opts: LocalPostgresOptions, name: string) => path.join(opts.dir, name);
const dataDir = (opts: LocalPostgresOptions, name: string) => path.join(memberDir(opts, name), "data");
const secretFile = (opts: LocalPostgresOptions, which: (typeof SECRETS)[number]) => path.join(opts.dir, "secrets", `${which}-password`);

export function readSecret(opts: LocalPostgresOptions, which: (typeof SECRETS)[number]): string {
  return readFileSync(secretFile(opts, which), "utf8").trim();
}

/** Creates the passwords once (0600, owned by the service user); later starts reuse them. */
function ensureSecrets(opts: LocalPostgresOptions): void {
  const dir = path.join(opts.dir, "secrets");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  giveToServiceUser(dir);
  for (const which of SECRETS) {
    const file = secretFile(opts, which);
    if (existsSync(file)) continue;
    writeFileSync(file, randomBytes(24).toString("base64url"), { mode: 0o600 });
    giveToServiceUser(file);
  }
}

/** Writes a member's config from the shared renderers (rewritten at every start, so they never drift). */
function writeMemberConfig(opts: LocalPostgresOptions, name: string): { conf: string } {
  const dir = memberDir(opts, name);
  mkdirSync(path.join(dir, "run"), { recursive: true });
  const hba = path.join(dir, "pg_hba.conf");
  const conf = path.join(dir, "postgresql.conf");
  // Replicas on other loopback addresses connect from them: the whole loopback range then.
  writeFileSync(hba, renderPgHba({ clientCidrs: [opts.replicaHosts ? "127.0.0.0/8" : "127.0.0.1/32", "::1/128"], replicationUser: DEFAULT_REPLICATION_USER }));
  writeFileSync(
    conf,
    renderPostgresConf({
      port: memberPort(opts, name),
      listenAddresses: memberHost(opts, name),
      clusterName: `shopfds-local-${name}`,
      hbaFile: hba,
      unixSocketDirectory: path.join(dir, "run"),
      replicas: opts.replicas,
      maxConnections: 100,
      sharedBuffers: "32MB",
      maxSlotWalKeepSize: "512MB",
    }),
  );
  for (const p of [dir, path.join(dir, "run"), hba, conf]) giveToServiceUser(p);
  return { conf };
}

async function startServer(opts: LocalPostgresOptions, name: string, conf: string): Promise<number> {
  const data = dataDir(opts, name);
  const log = path.join(memberDir(opts, name), "server.log");
  await run(path.join(postgresBinDir(), "pg_ctl"), ["start", "-w", "-t", "60", "-s", "-D", data, "-l", log, "-o", `-c config_file=${conf}`], { asServiceUser: true });
  const pid = postmasterPid(data);
  if (!pid) throw new Error(`PostgreSQL ${name} did not leave a live postmaster.pid; see ${log}`);
  return pid;
}

/** A connection as the superuser to a member (for the stack's own checks and the tests' inspection). */
export async function superuserClient(opts: LocalPostgresOptions, name = "primary", database = "postgres"): Promise<Client> {
  const client = new Client({ host: memberHost(opts, name), port: memberPort(opts, name), user: "postgres", database, password: readSecret(opts, "superuser") });
  await client.connect();
  return client;
}

async function initPrimary(opts: LocalPostgresOptions, log: Log): Promise<void> {
  const data = dataDir(opts, "primary");
  log(`initdb ${data}`);
  await run(
    path.join(postgresBinDir(), "initdb"),
    ["-D", data, "-U", "postgres", `--pwfile=${secretFile(opts, "superuser")}`, "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
    { asServiceUser: true },
  );
}

async function runPrimaryInitSql(opts: LocalPostgresOptions): Promise<void> {
  const sqlFile = path.join(memberDir(opts, "primary"), "init-roles.sql");
  writeFileSync(
    sqlFile,
    renderPrimaryInitSql({
      replicationUser: DEFAULT_REPLICATION_USER,
      appUser: opts.user,
      database: opts.database,
      replicationPasswordFile: secretFile(opts, "replication"),
      appPasswordFile: secretFile(opts, "app"),
    }),
  );
  // The superuser password travels in the environment, never on a command line.
  await run(path.join(postgresBinDir(), "psql"), ["-X", "-q", "-h", HOST, "-p", String(opts.primaryPort), "-U", "postgres", "-d", "postgres", "-f", sqlFile], {
    env: { PGPASSWORD: readSecret(opts, "superuser") },
  });
}

async function bootstrapReplica(opts: LocalPostgresOptions, name: string): Promise<void> {
  const script = path.join(memberDir(opts, name), "replica-bootstrap.sh");
  writeFileSync(
    script,
    renderReplicaBootstrap({
      primaryHost: HOST,
      primaryPort: opts.primaryPort,
      replicationUser: DEFAULT_REPLICATION_USER,
      replicationPasswordFile: secretFile(opts, "replication"),
      waitForPrimarySeconds: 30,
    }),
    { mode: 0o755 },
  );
  await run("/bin/sh", [script], {
    asServiceUser: true,
    env: {
      PGDATA: dataDir(opts, name),
      SHOPFDS_SLOT_NAME: replicationSlotName(name),
      // Dev data is disposable: skip the final fsync of the copy (production keeps it).
      SHOPFDS_BASEBACKUP_EXTRA_ARGS: "--no-sync",
      PATH: `${postgresBinDir()}:${process.env.PATH}`,
    },
  });
}

/** Resolves once `pg_stat_replication` on the primary shows every replica streaming through its slot. */
export async function waitForStreaming(opts: LocalPostgresOptions, timeoutMs = 30_000): Promise<void> {
  const expected = memberNames(opts.replicas).slice(1).map(replicationSlotName);
  const client = await superuserClient(opts);
  try {
    await waitFor(`replicas ${expected.join(", ")} to stream`, timeoutMs, async () => {
      const { rows } = await client.query(
        `SELECT s.slot_name FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE r.state = 'streaming'`,
      );
      const streaming = new Set(rows.map((r) => r.slot_name));
      return expected.every((slot) => streaming.has(slot)) ? true : undefined;
    });
  } finally {
    await client.end();
  }
}

/** Starts one member if it is not running (a replica is cloned from the primary on first start). */
export async function startMember(opts: LocalPostgresOptions, name: string, log: Log = () => {}): Promise<number> {
  const running = postmasterPid(dataDir(opts, name));
  if (running) return running;
  const { conf } = writeMemberConfig(opts, name);
  if (name === "primary") {
    const fresh = !existsSync(path.join(dataDir(opts, name), "PG_VERSION"));
    if (fresh) await initPrimary(opts, log);
    const pid = await startServer(opts, name, conf);
    if (fresh) await runPrimaryInitSql(opts);
    return pid;
  }
  if (!existsSync(path.join(dataDir(opts, name), "PG_VERSION"))) {
    log(`pg_basebackup ${name} from the primary`);
    await bootstrapReplica(opts, name);
  }
  return startServer(opts, name, conf);
}

/** Stops one member by its PID (fast shutdown). Returns whether it was running. */
export async function stopMember(opts: LocalPostgresOptions, name: string): Promise<boolean> {
  const pid = postmasterPid(dataDir(opts, name));
  if (!pid) return false;
  await stopPid(pid, "SIGINT");
  return true;
}

/** The pair's directory and passwords, before any member starts (startPostgres does it; a test starting members one by one calls it first). */
export function preparePostgres(opts: LocalPostgresOptions): void {
  mkdirSync(opts.dir, { recursive: true });
  chmodSync(opts.dir, 0o755);
  giveToServiceUser(opts.dir);
  ensureSecrets(opts);
}

export async function startPostgres(opts: LocalPostgresOptions, log: Log = () => {}): Promise<PostgresOutputs> {
  preparePostgres(opts);
  for (const name of memberNames(opts.replicas)) {
    log(`postgres ${name} on ${memberHost(opts, name)}:${memberPort(opts, name)}`);
    await startMember(opts, name, log);
  }
  await waitForStreaming(opts);
  return postgresOutputs(opts);
}

export function postgresOutputs(opts: LocalPostgresOptions): PostgresOutputs {
  return {
    primary: { host: HOST, port: opts.primaryPort },
    replicas: memberNames(opts.replicas)
      .slice(1)
      .map((name) => ({ host: memberHost(opts, name), port: memberPort(opts, name) })),
    database: opts.database,
    user: opts.user,
    password: readSecret(opts, "app"),
  };
}

/** Stops replicas first, then the primary, each by PID. */
export async function stopPostgres(opts: LocalPostgresOptions): Promise<string[]> {
  const stopped: string[] = [];
  for (const name of memberNames(opts.replicas).reverse()) if (await stopMember(opts, name)) stopped.push(name);
  return stopped;
}

export function postgresStatus(opts: LocalPostgresOptions): MemberStatus[] {
  return memberNames(opts.replicas).map((name) => ({
    name,
    role: name === "primary" ? "primary" : "replica",
    port: memberPort(opts, name),
    pid: postmasterPid(dataDir(opts, name)),
  }));
}
