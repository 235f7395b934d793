/** Layer 1: the PostgreSQL renderers, exactly; they feed Docker, Kubernetes and the local stack alike. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renderPgHba, renderPostgresConf, renderPrimaryInitSql, renderReplicaBootstrap, replicationSlotName } from "../../components/postgres/render";
import { InvalidSettingsError } from "../../components/validation";

const conf = {
  port: 5432,
  listenAddresses: "*",
  clusterName: "shopfds-pg",
  hbaFile: "/etc/postgresql/pg_hba.conf",
  unixSocketDirectory: "/var/run/postgresql",
  replicas: 2,
  maxConnections: 200,
  sharedBuffers: "128MB",
  maxSlotWalKeepSize: "2GB",
};

/** postgresql.conf as a map of setting → value, comments dropped. */
function settings(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split("\n")
      .map((l) => l.replace(/#.*$/, "").trim())
      .filter(Boolean)
      .map((l) => {
        const [k, ...v] = l.split("=");
        return [k.trim(), v.join("=").trim()];
      }),
  );
}

describe("renderPostgresConf", () => {
  it("renders streaming replication, hot standby, SCRAM and a bounded slot WAL, sized for the replicas", () => {
    assert.deepEqual(settings(renderPostgresConf(conf)), {
      listen_addresses: "'*'",
      port: "5432",
      max_connections: "200",
      unix_socket_directories: "'/var/run/postgresql'",
      hba_file: "'/etc/postgresql/pg_hba.conf'",
      cluster_name: "'shopfds-pg'",
      password_encryption: "scram-sha-256",
      shared_buffers: "128MB",
      wal_level: "replica",
      wal_log_hints: "on",
      max_wal_senders: "6",
      max_replication_slots: "6",
      max_slot_wal_keep_size: "2GB",
      wal_sender_timeout: "30s",
      hot_standby: "on",
      hot_standby_feedback: "on",
      max_standby_streaming_delay: "30s",
      wal_receiver_status_interval: "1s",
      wal_receiver_timeout: "30s",
      log_destination: "'stderr'",
      log_line_prefix: "'%m [%p] %q%u@%d '",
      log_replication_commands: "on",
      log_min_duration_statement: "1000",
    });
  });

  it("reports every invalid setting at once, naming the field and the value", () => {
    assert.throws(
      () => renderPostgresConf({ ...conf, port: 70000, replicas: 0, sharedBuffers: "128mb", maxSlotWalKeepSize: "-1", hbaFile: "pg_hba.conf" }),
      (e: unknown) => {
        assert.ok(e instanceof InvalidSettingsError);
        assert.deepEqual(e.problems, [
          "port: must be an integer from 1 to 65535 (got 70000)",
          "hbaFile: must be an absolute path of letters, digits, `._-/` (got \"pg_hba.conf\")",
          "replicas: must be an integer from 1 to 16 (got 0)",
          "sharedBuffers: must be a PostgreSQL size such as 128MB (units kB, MB, GB, TB) (got \"128mb\")",
          "maxSlotWalKeepSize: must be a size such as 2GB (units kB, MB, GB, TB); -1 (unlimited) is refused (got \"-1\")",
        ]);
        assert.match(e.message, /^postgresql\.conf: 5 invalid settings:/);
        return true;
      },
    );
  });
});

describe("renderPgHba", () => {
  it("admits only SCRAM-SHA-256, and replication connections only for the replication role", () => {
    assert.equal(
      renderPgHba({ clientCidrs: ["127.0.0.1/32", "::1/128"], replicationUser: "replicator" }),
      [
        "# Rendered by components/postgres/render.ts (renderPgHba). Do not edit by hand.",
        "# Every connection authenticates with SCRAM-SHA-256; there is no trust or md5 line. Only the",
        "# replication role may open replication connections.",
        "local  all          all                       scram-sha-256",
        "host   replication  replicator  127.0.0.1/32  scram-sha-256",
        "host   replication  replicator  ::1/128       scram-sha-256",
        "host   all          all         127.0.0.1/32  scram-sha-256",
        "host   all          all         ::1/128       scram-sha-256",
        "",
      ].join("\n"),
    );
  });

  it("rejects a malformed CIDR, an empty list and a bad role name", () => {
    assert.throws(() => renderPgHba({ clientCidrs: ["10.0.0.0/33", "localhost"], replicationUser: "Repl" }), {
      name: "InvalidSettingsError",
      message: [
        "pg_hba.conf: 3 invalid settings:",
        "  - clientCidrs[0]: must be an IPv4 or IPv6 CIDR range such as 10.0.0.0/8 (got \"10.0.0.0/33\")",
        "  - clientCidrs[1]: must be an IPv4 or IPv6 CIDR range such as 10.0.0.0/8 (got \"localhost\")",
        "  - replicationUser: must be a lower-case SQL identifier (letters, digits, _; at most 63) (got \"Repl\")",
      ].join("\n"),
    });
    assert.throws(() => renderPgHba({ clientCidrs: [], replicationUser: "replicator" }), /clientCidrs: must list at least one CIDR range \(got \[\]\)/);
  });
});

describe("renderPrimaryInitSql", () => {
  const input = { replicationUser: "replicator", appUser: "shopfds", database: "shopfds", replicationPasswordFile: "/run/secrets/r", appPasswordFile: "/run/secrets/a" };

  it("creates a REPLICATION role without superuser and an application owner, reading passwords from files", () => {
    const sql = renderPrimaryInitSql(input);
    assert.deepEqual(
      sql.split("\n").filter((l) => !l.startsWith("--") && l !== ""),
      [
        "\\set ON_ERROR_STOP on",
        "\\set replication_password `cat '/run/secrets/r'`",
        "\\set app_password `cat '/run/secrets/a'`",
        `CREATE ROLE "replicator" WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'replication_password';`,
        `CREATE ROLE "shopfds" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';`,
        `CREATE DATABASE "shopfds" OWNER "shopfds";`,
        `REVOKE ALL ON DATABASE "shopfds" FROM PUBLIC;`,
        "\\unset replication_password",
        "\\unset app_password",
      ],
    );
  });

  it("refuses identifiers that would need quoting, a shared role and a system database", () => {
    assert.throws(() => renderPrimaryInitSql({ ...input, appUser: "replicator", database: "postgres" }), {
      message: [
        "primary init SQL: 2 invalid settings:",
        "  - appUser: must differ from replicationUser (got \"replicator\")",
        "  - database: must not be a system database (got \"postgres\")",
      ].join("\n"),
    });
    assert.throws(() => renderPrimaryInitSql({ ...input, database: 'x"; DROP' }), /database: must be a lower-case SQL identifier \(letters, digits, _; at most 63\) \(got "x\\"; DROP"\)/);
  });
});

describe("renderReplicaBootstrap", () => {
  const input = { primaryHost: "shopfds-dev-pg-primary-0", primaryPort: 5432, replicationUser: "replicator", replicationPasswordFile: "/run/secrets/r", waitForPrimarySeconds: 300 };

  it("clones through the replica's own slot with pg_basebackup -R, only into an empty data directory", () => {
    const script = renderReplicaBootstrap(input);
    assert.ok(script.startsWith("#!/bin/sh\n"));
    for (const line of [
      "PRIMARY_HOST='shopfds-dev-pg-primary-0'",
      "PRIMARY_PORT='5432'",
      "REPLICATION_USER='replicator'",
      `PGPASSWORD="$(cat '/run/secrets/r')"`,
      `if [ ! -s "$PGDATA/PG_VERSION" ]; then`,
      `    if [ "$waited" -ge 300 ]; then`,
      `  [ "$slot_type" = "physical" ] || create_slot="--create-slot"`,
      `  pg_basebackup --pgdata="$PGDATA" --dbname="$CONNINFO" --slot="$SLOT_NAME" $create_slot \\`,
      "    --wal-method=stream --checkpoint=fast --write-recovery-conf ${SHOPFDS_BASEBACKUP_EXTRA_ARGS:-}",
      `if [ "$#" -gt 0 ]; then exec "$@"; fi`,
    ]) {
      assert.ok(script.split("\n").includes(line), `missing line: ${line}`);
    }
  });

  it("rejects a host that could break out of the script", () => {
    assert.throws(() => renderReplicaBootstrap({ ...input, primaryHost: "x'; rm -rf /" }), /primaryHost: must be a host name or IP address/);
  });

  it("derives slot names the way the script does from host names", () => {
    assert.equal(replicationSlotName("shopfds-prod-pg-replica-1"), "shopfds_prod_pg_replica_1");
    assert.equal(replicationSlotName("Replica.A"), "replica_a");
  });
});
