/**
 * The runtime against a real PostgreSQL that takes TLS only, with the pg_hba rules the Kubernetes
 * stacks ship (TLS_ONLY_HBA, then CloudNativePG's own final scram rule) and a server certificate from a
 * CA, as CloudNativePG issues them: the router, given the contract's `tls.caFile`, writes and reads over
 * verified TLS; without it the server refuses; a certificate from another CA or for another name is
 * refused by the client. Certificates are made with openssl; the server is stopped by its PID.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { TLS_ONLY_HBA } from "../../components/postgres/kubernetes";
import { Database } from "../../runtime/db/router";
import { giveToServiceUser, postmasterPid, run, stopPid } from "../../scripts/local-stack/process";
import { postgresBinDir } from "../../scripts/local-stack/postgres";
import { testPorts } from "../support/ports";
import { testCertificate } from "../support/tls";

const PORT = testPorts("postgresTls");
const dir = mkdtempSync(path.join(tmpdir(), "shopfds-pg-tls-"));
const file = (name: string) => path.join(dir, name);
const PASSWORD = "tls-test-password";
let pid: number | undefined;

const outputs = (tls?: { caFile: string }, host = "localhost") => ({
  primary: { host, port: PORT },
  replicas: [{ host, port: PORT }],
  database: "postgres",
  user: "app",
  password: PASSWORD,
  ...(tls ? { tls } : {}),
  connectTimeoutMs: 3000,
});

before(async () => {
  await testCertificate(dir, "cluster", ["localhost"]);
  await testCertificate(dir, "other", ["localhost"]);
  chmodSync(dir, 0o755);
  giveToServiceUser(dir);
  const data = file("data");
  writeFileSync(file("pw"), "superuser-password");
  for (const f of ["pw", "cluster-server.key", "cluster-server.crt"]) giveToServiceUser(file(f));
  chmodSync(file("cluster-server.key"), 0o600);
  await run(path.join(postgresBinDir(), "initdb"), ["-D", data, "-U", "postgres", `--pwfile=${file("pw")}`, "--auth=scram-sha-256", "--no-sync"], { asServiceUser: true });
  writeFileSync(file("pg_hba.conf"), ["local all all trust", ...TLS_ONLY_HBA, "host all all all scram-sha-256", ""].join("\n"));
  writeFileSync(
    file("postgresql.conf"),
    [`port = ${PORT}`, "listen_addresses = '127.0.0.1'", `unix_socket_directories = '${dir}'`, `hba_file = '${file("pg_hba.conf")}'`, "ssl = on", `ssl_cert_file = '${file("cluster-server.crt")}'`, `ssl_key_file = '${file("cluster-server.key")}'`, ""].join("\n"),
  );
  for (const f of ["pg_hba.conf", "postgresql.conf"]) giveToServiceUser(file(f));
  await run(path.join(postgresBinDir(), "pg_ctl"), ["start", "-w", "-t", "30", "-s", "-D", data, "-l", file("server.log"), "-o", `-c config_file=${file("postgresql.conf")}`], { asServiceUser: true });
  pid = postmasterPid(data);
  await run(path.join(postgresBinDir(), "psql"), ["-X", "-q", "-h", dir, "-p", String(PORT), "-U", "postgres", "-d", "postgres", "-c", `CREATE ROLE app LOGIN PASSWORD '${PASSWORD}'; CREATE TABLE t (v text); GRANT ALL ON t TO app;`], { asServiceUser: true });
});

after(async () => {
  if (pid) await stopPid(pid, "SIGINT");
  rmSync(dir, { recursive: true, force: true });
});

describe("PostgreSQL with TLS only (the Kubernetes stacks' rules)", () => {
  it("the router writes and reads over verified TLS with the contract's CA file", async () => {
    const db = await Database.connect(outputs({ caFile: file("cluster-ca.crt") }));
    try {
      await db.query("INSERT INTO t VALUES ('over tls')");
      const read = await db.query<{ v: string }>("SELECT v FROM t");
      assert.deepEqual(read.rows, [{ v: "over tls" }]);
      const ssl = await db.query<{ ssl: boolean }>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", [], { target: "primary" });
      assert.deepEqual(ssl.rows, [{ ssl: true }]);
    } finally {
      await db.close();
    }
  });

  it("without TLS the server refuses before authentication", async () => {
    const db = await Database.connect(outputs());
    try {
      await assert.rejects(db.query("INSERT INTO t VALUES ('plain')"), /no encryption/);
    } finally {
      await db.close();
    }
  });

  it("the client refuses a server whose certificate another CA signed, or that names another host", async () => {
    for (const [tls, host, error] of [
      [{ caFile: file("other-ca.crt") }, "localhost", /self[- ]signed certificate in certificate chain|unable to verify/],
      [{ caFile: file("cluster-ca.crt") }, "127.0.0.1", /does not match certificate's altnames|IP: 127\.0\.0\.1 is not in the cert's list/],
    ] as const) {
      const db = await Database.connect(outputs(tls, host));
      try {
        await assert.rejects(db.query("INSERT INTO t VALUES ('unverified')"), error);
      } finally {
        await db.close();
      }
    }
  });

  it("a CA file that cannot be read is named in the error", async () => {
    await assert.rejects(Database.connect(outputs({ caFile: file("missing.crt") })), { message: `postgres.tls.caFile: cannot read ${file("missing.crt")} (ENOENT)` });
  });
});
