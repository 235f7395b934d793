/** Layer 1: the Redis Cluster renderers, exactly; they feed Docker, Kubernetes and the local stack alike. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { renderClusterCreateScript, renderNodeStartScript, renderRedisAuthInclude, renderRedisConf } from "../../components/redis/render";
import { InvalidSettingsError } from "../../components/validation";

const conf = { port: 6379, clusterPort: 16379, nodeTimeoutMs: 2000, dataDir: "/data", maxMemory: "256mb", authIncludeFile: "/run/secrets/redis-auth.conf", announceHostnames: true };
const nodes = Array.from({ length: 6 }, (_, i) => ({ host: `shopfds-dev-redis-${i}`, port: 6379 }));
const create = { nodes, replicasPerMaster: 1, passwordFile: "/run/secrets/redis-password", waitSeconds: 60 };

const directives = (text: string) =>
  Object.fromEntries(
    text
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => [l.split(" ")[0], l.slice(l.indexOf(" ") + 1)]),
  );

describe("renderRedisConf", () => {
  it("renders a cluster node: explicit bus port, fast failover, no eviction, AOF, password by include", () => {
    assert.deepEqual(directives(renderRedisConf(conf)), {
      port: "6379",
      "protected-mode": "no",
      "cluster-enabled": "yes",
      "cluster-port": "16379",
      "cluster-config-file": "nodes.conf",
      "cluster-node-timeout": "2000",
      "cluster-require-full-coverage": "yes",
      "cluster-allow-reads-when-down": "no",
      "cluster-preferred-endpoint-type": "hostname",
      dir: "/data",
      appendonly: "yes",
      appendfsync: "everysec",
      save: '""',
      maxmemory: "256mb",
      "maxmemory-policy": "noeviction",
      "repl-diskless-sync": "yes",
      "repl-diskless-sync-delay": "0",
      "tcp-keepalive": "60",
      include: "/run/secrets/redis-auth.conf",
    });
  });

  it("with TLS, has no plain port: clients, replication and the bus speak TLS, nodes checked against the CA", () => {
    const d = directives(renderRedisConf({ ...conf, tls: { certFile: "/tls/tls.crt", keyFile: "/tls/tls.key", caFile: "/tls/ca.crt" } }));
    assert.equal(d.port, "0");
    assert.equal(d["tls-port"], "6379");
    assert.equal(d["tls-cert-file"], "/tls/tls.crt");
    assert.equal(d["tls-key-file"], "/tls/tls.key");
    assert.equal(d["tls-ca-cert-file"], "/tls/ca.crt");
    assert.equal(d["tls-replication"], "yes");
    assert.equal(d["tls-cluster"], "yes");
    assert.equal(d["tls-auth-clients"], "no", "clients authenticate with the password; they verify the server");
    assert.equal(d["cluster-port"], "16379");
    assert.equal(directives(renderRedisConf(conf))["tls-port"], undefined, "no TLS unless asked");
  });

  it("names a bad TLS file path", () => {
    assert.throws(() => renderRedisConf({ ...conf, tls: { certFile: "tls.crt", keyFile: "/tls/tls.key", caFile: "/x;rm" } }), (e: Error) => /tls\.certFile: must be an absolute path \(got "tls.crt"\)/.test(e.message) && /tls\.caFile: must be an absolute path/.test(e.message) && !/tls\.keyFile/.test(e.message));
  });

  it("announces IPs when host names are off (the local stack on loopback)", () => {
    assert.match(renderRedisConf({ ...conf, announceHostnames: false }), /^cluster-preferred-endpoint-type ip$/m);
  });

  it("never contains a password", () => {
    assert.doesNotMatch(renderRedisConf(conf), /requirepass|masterauth/);
  });

  it("names every bad setting at once", () => {
    assert.throws(
      () => renderRedisConf({ ...conf, port: 0, clusterPort: 0, nodeTimeoutMs: 15000, dataDir: "data", maxMemory: "1G", authIncludeFile: "/x;rm" }),
      (e: Error) =>
        e instanceof InvalidSettingsError &&
        e.message ===
          [
            "redis.conf: 7 invalid settings:",
            "  - port: must be an integer from 1 to 65535 (got 0)",
            "  - clusterPort: must be an integer from 1 to 65535 (got 0)",
            "  - clusterPort: must differ from port (got 0)",
            "  - nodeTimeoutMs: must be an integer from 500 to 5000 (failover takes about 1.7 × it + 0.7 s; FR-014 allows 10 s) (got 15000)",
            '  - dataDir: must be an absolute path (got "data")',
            '  - maxMemory: must be a Redis size such as 256mb (got "1G")',
            '  - authIncludeFile: must be an absolute path (got "/x;rm")',
          ].join("\n"),
    );
  });
});

describe("renderRedisAuthInclude", () => {
  it("gives clients and replicas the same password", () => {
    assert.equal(renderRedisAuthInclude("a".repeat(32)), `requirepass ${"a".repeat(32)}\nmasterauth ${"a".repeat(32)}\n`);
  });
  it("refuses a password that could break the file, without showing it", () => {
    assert.throws(() => renderRedisAuthInclude("short pass\nrename-command"), { message: "redis password: must be 16 to 128 letters and digits (value not shown)" });
  });
});

describe("renderClusterCreateScript", () => {
  const script = renderClusterCreateScript(create);

  it("is valid POSIX sh", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "redis-create-"));
    try {
      writeFileSync(path.join(dir, "create.sh"), script);
      execFileSync("sh", ["-n", path.join(dir, "create.sh")]);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("creates 3 masters with a replica each from every node, passing the password by environment", () => {
    assert.match(script, new RegExp(`^NODES="${nodes.map((n) => `${n.host}:${n.port}`).join(" ")}"$`, "m"));
    assert.match(script, /^EXPECTED=6$/m);
    assert.match(script, /^rcli\(\) \{ redis-cli "\$@"; \}$/m);
    assert.match(script, /^rcli --cluster create \$addresses --cluster-replicas 1 --cluster-yes$/m);
    assert.doesNotMatch(script, /redis-cli -h|--tls/, "every call goes through rcli, none speaks TLS");
    assert.match(script, /^REDISCLI_AUTH="\$\(cat '\/run\/secrets\/redis-password'\)"$/m);
    assert.doesNotMatch(script, / -a /, "no password on a command line");
  });

  it("is idempotent: a formed cluster exits 0, a half-formed one is refused", () => {
    assert.match(script, /cluster already formed: \$EXPECTED nodes, state ok"\n  exit 0/);
    assert.match(script, /refusing to create over it[^\n]*\n    exit 2/);
  });

  it("names every bad input at once", () => {
    assert.throws(
      () => renderClusterCreateScript({ nodes: [{ host: "bad host", port: 70000 }], replicasPerMaster: 0, passwordFile: "pw", waitSeconds: 0 }),
      (e: Error) =>
        e instanceof InvalidSettingsError &&
        e.message ===
          [
            "cluster creation: 6 invalid settings:",
            "  - replicasPerMaster: must be an integer ≥ 1 (got 0)",
            "  - nodes: must be a multiple of 1 and at least 3 (3 masters, each with 0 replica(s)) (got 1)",
            '  - nodes[0].host: must be a host name or IP address (got "bad host")',
            "  - nodes[0].port: must be an integer from 1 to 65535 (got 70000)",
            '  - passwordFile: must be an absolute path (got "pw")',
            "  - waitSeconds: must be a positive integer (got 0)",
          ].join("\n"),
    );
  });

  it("speaks TLS to every node when given the CA, verifying it (no --insecure)", () => {
    const tls = renderClusterCreateScript({ ...create, tlsCaFile: "/tls/ca.crt" });
    assert.match(tls, /^rcli\(\) \{ redis-cli --tls --cacert '\/tls\/ca.crt' "\$@"; \}$/m);
    assert.doesNotMatch(tls, /--insecure/);
    const calls = tls.split("\n").filter((l) => /redis-cli/.test(l) && !/^\s*echo /.test(l));
    assert.deepEqual(calls, [`rcli() { redis-cli --tls --cacert '/tls/ca.crt' "$@"; }`], "the one redis-cli call is inside rcli");
    assert.throws(() => renderClusterCreateScript({ ...create, tlsCaFile: "ca.crt" }), /tlsCaFile: must be an absolute path \(got "ca.crt"\)/);
  });

  it("needs at least 3 masters with their replicas", () => {
    assert.throws(() => renderClusterCreateScript({ ...create, nodes: nodes.slice(0, 4) }), /nodes: must be a multiple of 2 and at least 6 \(3 masters, each with 1 replica\(s\)\) \(got 4\)/);
  });
});

describe("renderNodeStartScript", () => {
  it("is valid sh, refreshes nodes.conf from host names before exec'ing the server, and names bad paths", () => {
    const script = renderNodeStartScript({ configFile: "/etc/redis/redis.conf", dataDir: "/data" });
    const dir = mkdtempSync(path.join(tmpdir(), "shopfds-redis-start-"));
    try {
      writeFileSync(path.join(dir, "start.sh"), script);
      execFileSync("sh", ["-n", path.join(dir, "start.sh")]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.match(script, /^NODES='\/data\/nodes\.conf'$/m);
    assert.match(script, /^exec redis-server '\/etc\/redis\/redis\.conf' --cluster-announce-hostname "\$ANNOUNCE" "\$@"$/m);
    assert.throws(() => renderNodeStartScript({ configFile: "redis.conf", dataDir: "/data; rm -rf /" }), (e: Error) => e instanceof InvalidSettingsError && /configFile: must be an absolute path/.test(e.message) && /dataDir: must be an absolute path/.test(e.message));
  });
});
