/**
 * Pure renderers for the PostgreSQL pair: postgresql.conf, pg_hba.conf, the primary's first-start SQL
 * and the replica bootstrap script. The Docker backend, the Kubernetes backend and the local stack
 * (scripts/local-stack) all ship exactly what these functions return, so one test of a renderer covers
 * all three, and the local stack runs the very files a deployment would.
 */
import { isHost, isPgSize, isSafePath, Problems, RULES } from "../validation";

/** The role streaming replicas connect as: REPLICATION, never SUPERUSER. */
export const DEFAULT_REPLICATION_USER = "replicator";

export interface PostgresConfInput {
  /** TCP port the server listens on. */
  readonly port: number;
  /** Addresses to listen on, e.g. `*` in a container, `127.0.0.1` locally. */
  readonly listenAddresses: string;
  /** Names this server in `pg_stat_replication` (as the walreceiver's application_name) and in `ps`. */
  readonly clusterName: string;
  /** Absolute path of the pg_hba.conf this server uses. */
  readonly hbaFile: string;
  /** Directory of the Unix-domain socket. */
  readonly unixSocketDirectory: string;
  /** Number of streaming replicas the primary serves; sizes wal senders and slots with headroom. */
  readonly replicas: number;
  /** max_connections; the same on every member (a standby refuses a lower value than its primary). */
  readonly maxConnections: number;
  /** shared_buffers, in PostgreSQL units (e.g. `128MB`). */
  readonly sharedBuffers: string;
  /** Upper bound of WAL a lagging slot may hold back, so a dead replica cannot fill the primary's disk. */
  readonly maxSlotWalKeepSize: string;
}

export interface PgHbaInput {
  /** Address ranges (CIDR) from which clients and replicas may connect. */
  readonly clientCidrs: readonly string[];
  /** The replication role's name. */
  readonly replicationUser: string;
}

export interface PrimaryInitInput {
  /** The replication role to create (LOGIN REPLICATION, no superuser). */
  readonly replicationUser: string;
  /** The application's role: owns the application database, no superuser. */
  readonly appUser: string;
  /** The application database. */
  readonly database: string;
  /** File holding the replication role's password (read at run time; never rendered into the SQL). */
  readonly replicationPasswordFile: string;
  /** File holding the application role's password. */
  readonly appPasswordFile: string;
}

export interface ReplicaBootstrapInput {
  /** Where the primary is reachable from the replica. */
  readonly primaryHost: string;
  readonly primaryPort: number;
  readonly replicationUser: string;
  /** File holding the replication role's password. */
  readonly replicationPasswordFile: string;
  /** How long to wait for the primary before giving up, in seconds. */
  readonly waitForPrimarySeconds: number;
}

const CIDR = /^(\d{1,3}(\.\d{1,3}){3}\/(\d|[12]\d|3[0-2])|[0-9a-fA-F:]+\/(\d{1,2}|1[01]\d|12[0-8]))$/;

/**
 * A replication slot name for a replica instance, derived from its host name the same way the
 * bootstrap script derives it at run time (`shopfds-pg-replica-1` → `shopfds_pg_replica_1`).
 */
export function replicationSlotName(instanceName: string): string {
  return instanceName.toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 63);
}

export function renderPostgresConf(input: PostgresConfInput): string {
  const p = new Problems("postgresql.conf");
  p.rule("port", RULES.port, input.port);
  p.check(/^(\*|[A-Za-z0-9.:,\- ]+)$/.test(input.listenAddresses ?? ""), "listenAddresses", "must be `*` or a comma-separated list of addresses", input.listenAddresses);
  p.check(/^[A-Za-z0-9_\-]{1,63}$/.test(input.clusterName ?? ""), "clusterName", "must be 1-63 letters, digits, `_` or `-`", input.clusterName);
  p.check(isSafePath(input.hbaFile), "hbaFile", "must be an absolute path of letters, digits, `._-/`", input.hbaFile);
  p.check(isSafePath(input.unixSocketDirectory), "unixSocketDirectory", "must be an absolute path of letters, digits, `._-/`", input.unixSocketDirectory);
  p.check(Number.isInteger(input.replicas) && input.replicas >= 1 && input.replicas <= 16, "replicas", "must be an integer from 1 to 16", input.replicas);
  p.check(Number.isInteger(input.maxConnections) && input.maxConnections >= 10 && input.maxConnections <= 10000, "maxConnections", "must be an integer from 10 to 10000", input.maxConnections);
  p.rule("sharedBuffers", RULES.pgSize, input.sharedBuffers);
  p.check(isPgSize(input.maxSlotWalKeepSize), "maxSlotWalKeepSize", "must be a size such as 2GB (units kB, MB, GB, TB); -1 (unlimited) is refused", input.maxSlotWalKeepSize);
  p.throwIfAny();

  // Headroom of 4 lets a pg_basebackup (which holds a sender of its own) and a replacement replica connect
  // while every declared replica streams.
  const senders = input.replicas + 4;
  return [
    "# Rendered by components/postgres/render.ts (renderPostgresConf). Do not edit by hand.",
    "# The same file serves the primary and its replicas: a standby must match or exceed its primary's",
    "# max_connections and max_wal_senders, which one shared file guarantees.",
    "",
    "# Connections",
    `listen_addresses = '${input.listenAddresses}'`,
    `port = ${input.port}`,
    `max_connections = ${input.maxConnections}`,
    `unix_socket_directories = '${input.unixSocketDirectory}'`,
    `hba_file = '${input.hbaFile}'`,
    `cluster_name = '${input.clusterName}'`,
    "password_encryption = scram-sha-256",
    "",
    "# Memory",
    `shared_buffers = ${input.sharedBuffers}`,
    "",
    "# Write-ahead log and streaming replication",
    "wal_level = replica",
    "wal_log_hints = on                # lets pg_rewind re-attach a former primary",
    `max_wal_senders = ${senders}`,
    `max_replication_slots = ${senders}`,
    `max_slot_wal_keep_size = ${input.maxSlotWalKeepSize}`,
    "wal_sender_timeout = 30s",
    "",
    "# Standby behaviour (ignored on the primary)",
    "hot_standby = on",
    "hot_standby_feedback = on         # the primary keeps rows a replica's running query still needs",
    "max_standby_streaming_delay = 30s",
    "wal_receiver_status_interval = 1s # keeps pg_stat_replication's lag columns fresh",
    "wal_receiver_timeout = 30s",
    "",
    "# Logging",
    "log_destination = 'stderr'",
    "log_line_prefix = '%m [%p] %q%u@%d '",
    "log_replication_commands = on",
    "log_min_duration_statement = 1000",
    "",
  ].join("\n");
}

export function renderPgHba(input: PgHbaInput): string {
  const p = new Problems("pg_hba.conf");
  p.check(Array.isArray(input.clientCidrs) && input.clientCidrs.length > 0, "clientCidrs", "must list at least one CIDR range", input.clientCidrs);
  for (const [i, cidr] of (input.clientCidrs ?? []).entries()) {
    p.check(CIDR.test(cidr), `clientCidrs[${i}]`, "must be an IPv4 or IPv6 CIDR range such as 10.0.0.0/8", cidr);
  }
  p.rule("replicationUser", RULES.identifier, input.replicationUser);
  p.throwIfAny();

  const rows: string[][] = [["local", "all", "all", "", "scram-sha-256"]];
  for (const cidr of input.clientCidrs) rows.push(["host", "replication", input.replicationUser, cidr, "scram-sha-256"]);
  for (const cidr of input.clientCidrs) rows.push(["host", "all", "all", cidr, "scram-sha-256"]);
  const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c].length)));
  return [
    "# Rendered by components/postgres/render.ts (renderPgHba). Do not edit by hand.",
    "# Every connection authenticates with SCRAM-SHA-256; there is no trust or md5 line. Only the",
    `# replication role may open replication connections.`,
    ...rows.map((r) => r.map((v, c) => (c < 4 ? v.padEnd(widths[c]) : v)).join("  ").trimEnd()),
    "",
  ].join("\n");
}

export function renderPrimaryInitSql(input: PrimaryInitInput): string {
  const p = new Problems("primary init SQL");
  p.rule("replicationUser", RULES.identifier, input.replicationUser);
  p.rule("appUser", RULES.identifier, input.appUser);
  p.rule("database", RULES.identifier, input.database);
  p.check(input.appUser !== input.replicationUser, "appUser", "must differ from replicationUser", input.appUser);
  p.check(!["postgres", "template0", "template1"].includes(input.database), "database", "must not be a system database", input.database);
  p.check(isSafePath(input.replicationPasswordFile), "replicationPasswordFile", "must be an absolute path of letters, digits, `._-/`", input.replicationPasswordFile);
  p.check(isSafePath(input.appPasswordFile), "appPasswordFile", "must be an absolute path of letters, digits, `._-/`", input.appPasswordFile);
  p.throwIfAny();

  return [
    "-- Rendered by components/postgres/render.ts (renderPrimaryInitSql). Do not edit by hand.",
    "-- Runs once, as the superuser, when the primary's data directory is first initialised. Passwords are",
    "-- read from secret files by psql at run time, so they never appear in this file or in a process list.",
    "\\set ON_ERROR_STOP on",
    `\\set replication_password \`cat '${input.replicationPasswordFile}'\``,
    `\\set app_password \`cat '${input.appPasswordFile}'\``,
    `CREATE ROLE "${input.replicationUser}" WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'replication_password';`,
    `CREATE ROLE "${input.appUser}" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';`,
    `CREATE DATABASE "${input.database}" OWNER "${input.appUser}";`,
    `REVOKE ALL ON DATABASE "${input.database}" FROM PUBLIC;`,
    "\\unset replication_password",
    "\\unset app_password",
    "",
  ].join("\n");
}

/**
 * A POSIX shell script that turns an empty data directory into a streaming replica of the primary
 * (`pg_basebackup -R` through the replica's own physical slot, created on first use), then execs its
 * arguments (the server) if any. A data directory that already holds a cluster is left alone, so a
 * restarted replica resumes from its slot.
 */
export function renderReplicaBootstrap(input: ReplicaBootstrapInput): string {
  const p = new Problems("replica bootstrap");
  p.check(isHost(input.primaryHost), "primaryHost", "must be a host name or IP address", input.primaryHost);
  p.rule("primaryPort", RULES.port, input.primaryPort);
  p.rule("replicationUser", RULES.identifier, input.replicationUser);
  p.check(isSafePath(input.replicationPasswordFile), "replicationPasswordFile", "must be an absolute path of letters, digits, `._-/`", input.replicationPasswordFile);
  p.check(Number.isInteger(input.waitForPrimarySeconds) && input.waitForPrimarySeconds >= 1, "waitForPrimarySeconds", "must be a positive integer", input.waitForPrimarySeconds);
  p.throwIfAny();

  return `#!/bin/sh
# Rendered by components/postgres/render.ts (renderReplicaBootstrap). Do not edit by hand.
# Initialises an empty PGDATA as a streaming replica of ${input.primaryHost}:${input.primaryPort}, then execs "$@".
set -eu
: "\${PGDATA:?PGDATA must name the data directory}"
PRIMARY_HOST='${input.primaryHost}'
PRIMARY_PORT='${input.primaryPort}'
REPLICATION_USER='${input.replicationUser}'
# One physical slot per replica, named after the instance (its host name unless SHOPFDS_SLOT_NAME says).
SLOT_NAME="\${SHOPFDS_SLOT_NAME:-$(hostname | tr 'A-Z' 'a-z' | tr -c 'a-z0-9_\\n' '_' | cut -c1-63)}"
PGPASSWORD="$(cat '${input.replicationPasswordFile}')"
export PGPASSWORD

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "replica-bootstrap: waiting for primary $PRIMARY_HOST:$PRIMARY_PORT"
  waited=0
  until pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT"; do
    waited=$((waited + 1))
    if [ "$waited" -ge ${input.waitForPrimarySeconds} ]; then
      echo "replica-bootstrap: primary $PRIMARY_HOST:$PRIMARY_PORT not ready after ${input.waitForPrimarySeconds} s" >&2
      exit 1
    fi
    sleep 1
  done
  CONNINFO="host=$PRIMARY_HOST port=$PRIMARY_PORT user=$REPLICATION_USER application_name=$SLOT_NAME"
  slot_type="$(psql "$CONNINFO replication=true" -XAtc "READ_REPLICATION_SLOT $SLOT_NAME" | cut -d'|' -f1)"
  create_slot=""
  [ "$slot_type" = "physical" ] || create_slot="--create-slot"
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  # A half-finished earlier attempt leaves files that pg_basebackup refuses to overwrite.
  find "$PGDATA" -mindepth 1 -delete
  echo "replica-bootstrap: pg_basebackup through slot $SLOT_NAME \${create_slot:+(creating it)}"
  pg_basebackup --pgdata="$PGDATA" --dbname="$CONNINFO" --slot="$SLOT_NAME" $create_slot \\
    --wal-method=stream --checkpoint=fast --write-recovery-conf \${SHOPFDS_BASEBACKUP_EXTRA_ARGS:-}
  echo "replica-bootstrap: done"
fi
unset PGPASSWORD
if [ "$#" -gt 0 ]; then exec "$@"; fi
`;
}
