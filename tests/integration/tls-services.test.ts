/**
 * The runtime against a real Redis Cluster and a real RabbitMQ that take TLS only, as the Kubernetes
 * stacks run them: six redis-server nodes with `port 0` (clients, replication and the cluster bus over
 * TLS, from the same renderer the stacks ship) and a RabbitMQ node with `listeners.tcp = none` and AMQPS.
 * Each server certificate names the service, not the address connected to (Redis Cluster nodes
 * announce addresses), so the contract's `tls.serverName` is what the client checks. Given the contract's
 * `tls`, the runtime's clients work; a plain client is refused; a certificate from another CA, or a
 * client that checks the address instead of the name, is refused by the client. Certificates are made
 * with openssl; every server is stopped by its PID, even when a test fails.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { createConnection } from "node:net";
import { type ConnectionOptions, connect as tlsConnect } from "node:tls";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import amqp from "amqplib";
import type { Cluster } from "ioredis";
import { REDIS_NODE_COUNT } from "../../components/redis/render";
import { TaskProducer } from "../../runtime/jobs/producer";
import { Worker } from "../../runtime/jobs/worker";
import type { RabbitMqOutputs, RedisOutputs } from "../../runtime/outputs";
import { connectRedisCluster } from "../../runtime/redis/client";
import { verifiedTls } from "../../runtime/tls";
import { run } from "../../scripts/local-stack/process";
import { type LocalRabbitOptions, startRabbit, stopRabbit } from "../../scripts/local-stack/rabbitmq";
import { type LocalRedisOptions, startRedis, stopRedis } from "../../scripts/local-stack/redis";
import { testPorts } from "../support/ports";
import { PYTHON } from "../support/celery";
import { FLOWER_CELERY_CONFIG_MODULE, renderFlowerCeleryConfig } from "../../components/jobs/flower-config";
import { testCertificate, type TestCertificate } from "../support/tls";

const dir = mkdtempSync(path.join(tmpdir(), "shopfds-tls-"));
const REDIS_NAME = "redis.shopfds.test";
const RABBIT_NAME = "rabbitmq.shopfds.test";
const REDIS_PORT = testPorts("redisTls");
let redisOptions: LocalRedisOptions;
let rabbitOptions: LocalRabbitOptions;
let redis: RedisOutputs;
let rabbit: RabbitMqOutputs;
let other: TestCertificate;
const clients: Cluster[] = [];

/** A plain-text request to a TLS-only port: what comes back before the server drops it (never a reply). */
function plainAnswer(port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    const done = () => (socket.destroy(), resolve(reply));
    socket.setTimeout(2000, done);
    socket.on("error", done);
    socket.on("close", done);
    socket.on("connect", () => socket.write(request));
    socket.on("data", (d) => (reply += d.toString("latin1")));
  });
}

/** The error code of a TLS handshake with `options`, or "none". */
function handshakeError(port: number, options: ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ ...options, host: "127.0.0.1", port });
    socket.on("secureConnect", () => (socket.destroy(), resolve("none")));
    socket.on("error", (e: NodeJS.ErrnoException) => (socket.destroy(), resolve(e.code ?? e.message)));
  });
}

/** A cluster client that gives up at once. */
function client(outputs: RedisOutputs): { cluster: Cluster } {
  const cluster = connectRedisCluster(outputs, { cluster: { clusterRetryStrategy: () => null } });
  clients.push(cluster);
  return { cluster };
}

before(async () => {
  const redisCert = await testCertificate(dir, "redis", [REDIS_NAME]);
  const rabbitCert = await testCertificate(dir, "rabbit", [RABBIT_NAME]);
  other = await testCertificate(dir, "other", [REDIS_NAME, RABBIT_NAME]);
  redisOptions = { dir: path.join(dir, "redis"), firstPort: REDIS_PORT, firstBusPort: REDIS_PORT + 10, nodeTimeoutMs: 2000, maxMemory: "32mb", tls: { ...redisCert, serverName: REDIS_NAME } };
  rabbitOptions = { dir: path.join(dir, "rabbitmq"), firstPort: testPorts("rabbitTls"), name: `shopfds-tls-${process.pid}`, tls: { ...rabbitCert, serverName: RABBIT_NAME } };
  [redis, rabbit] = await Promise.all([startRedis(redisOptions), startRabbit(rabbitOptions)]);
});

after(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all([redisOptions && stopRedis(redisOptions), rabbitOptions && stopRabbit(rabbitOptions)]);
  rmSync(dir, { recursive: true, force: true });
});

describe("Redis Cluster, TLS only", () => {
  it("the runtime's cluster client verifies every node against the contract's CA and name, and reads and writes on all three masters", async () => {
    assert.deepEqual(redis.tls, { caFile: path.join(dir, "redis-ca.crt"), serverName: REDIS_NAME });
    const { cluster } = client(redis);
    const keys = Array.from({ length: 60 }, (_, i) => `tls:key:${i}`);
    for (const k of keys) await cluster.set(k, `v-${k}`, "EX", 60);
    assert.deepEqual(await Promise.all(keys.map((k) => cluster.get(k))), keys.map((k) => `v-${k}`));
    // Every node over TLS (redis-cli checks the chain): three masters holding keys, and — replication
    // and the cluster bus run over TLS too — three replicas in sync with their masters.
    const nodes = await Promise.all(
      Array.from({ length: REDIS_NODE_COUNT }, async (_, i) => {
        const cli = (...args: string[]) => run("redis-cli", ["--tls", "--cacert", redis.tls!.caFile, "-h", "127.0.0.1", "-p", String(REDIS_PORT + i), ...args], { env: { REDISCLI_AUTH: redis.password } });
        const replication = await cli("info", "replication");
        return { role: /^role:(\w+)/m.exec(replication)?.[1], keys: Number((await cli("dbsize")).trim()), linkUp: /^master_link_status:up/m.test(replication) };
      }),
    );
    const masters = nodes.filter((n) => n.role === "master");
    const replicas = nodes.filter((n) => n.role === "slave");
    assert.equal(masters.length, 3);
    assert.ok(masters.every((n) => n.keys > 0), `keys on every master: ${masters.map((n) => n.keys).join(", ")}`);
    assert.equal(replicas.length, 3);
    assert.ok(replicas.every((n) => n.linkUp), "every replica's link to its master is up");
  });

  it("answers nothing to a plain-text client", async () => {
    const reply = await plainAnswer(REDIS_PORT, "PING\r\n");
    assert.doesNotMatch(reply, /PONG|NOAUTH|-ERR/, "no Redis reply over plain TCP");
  });

  // ioredis reports only "Connection is closed." per node; the handshake with the same options says why.
  it("is refused by the client when the certificate comes from another CA", async () => {
    const tls = { caFile: other.caFile, serverName: REDIS_NAME };
    await assert.rejects(client({ ...redis, tls }).cluster.get("tls:key:0"));
    assert.match(await handshakeError(REDIS_PORT, verifiedTls("redis.tls", tls)!), /SELF_SIGNED|UNABLE_TO_VERIFY/);
  });

  it("is refused by the client that checks the address instead of the certificate's name", async () => {
    const tls = { caFile: redis.tls!.caFile };
    await assert.rejects(client({ ...redis, tls }).cluster.get("tls:key:0"));
    assert.match(await handshakeError(REDIS_PORT, verifiedTls("redis.tls", tls)!), /ERR_TLS_CERT_ALTNAME_INVALID/);
    assert.equal(await handshakeError(REDIS_PORT, verifiedTls("redis.tls", redis.tls)!), "none", "the contract's own settings pass the handshake");
  });
});

describe("RabbitMQ, TLS only", () => {
  it("a task sent by the runtime's producer over AMQPS is run by the runtime's worker, both verifying the broker", async () => {
    assert.match(rabbit.url, /^amqps:\/\//);
    const worker = new Worker({ url: rabbit.url, tls: rabbit.tls, hostname: `tls-worker-${process.pid}@test`, concurrency: 1, heartbeatSeconds: 2 });
    worker.register("tls.add", async (args) => (args[0] as number) + (args[1] as number));
    await worker.start();
    const producer = await TaskProducer.connect(rabbit.url, { tls: rabbit.tls });
    try {
      const task = await producer.send("tls.add", [2, 40], {});
      assert.equal(await task.result(10_000), 42);
    } finally {
      await producer.close();
      await worker.stop();
    }
  });

  it("takes no plain AMQP: a plain client on the same port and a plain amqp:// URL are refused", async () => {
    const reply = await plainAnswer(testPorts("rabbitTls"), "AMQP\x00\x00\x09\x01");
    assert.doesNotMatch(reply, /^\x01\x00\x00/, "no connection.start frame over plain TCP");
    await assert.rejects(amqp.connect(rabbit.url.replace(/^amqps:/, "amqp:"), { timeout: 2000 }));
    await assert.rejects(TaskProducer.connect(rabbit.url.replace(/^amqps:/, "amqp:"), { tls: rabbit.tls }), /rabbitmq\.url: must be amqps:\/\//);
  });

  // What Flower does on Kubernetes: `celery --config=<module>` with the rendered module on PYTHONPATH,
  // here with Debian's Celery (the same kombu and py-amqp path Flower's event consumer takes).
  it("Debian's Celery, with Flower's rendered config module, talks to the broker over AMQPS and refuses another CA", async () => {
    const configDir = (name: string, caFile: string) => {
      const d = path.join(dir, `flower-${name}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(path.join(d, `${FLOWER_CELERY_CONFIG_MODULE}.py`), renderFlowerCeleryConfig({ caFile, serverName: RABBIT_NAME }));
      return d;
    };
    const ping = async (pythonPath: string) => {
      const env = { PATH: process.env.PATH, HOME: process.env.HOME, PYTHONPATH: pythonPath };
      const args = ["-m", "celery", `--config=${FLOWER_CELERY_CONFIG_MODULE}`, `--broker=${rabbit.url}`, "inspect", "ping", "--timeout=1"];
      try {
        const { stdout, stderr } = await promisify(execFile)(PYTHON, args, { env, timeout: 60_000 });
        return stdout + stderr;
      } catch (e) {
        const err = e as { stdout?: string; stderr?: string; killed?: boolean };
        assert.equal(err.killed, false, "celery returned by itself");
        return `${err.stdout ?? ""}${err.stderr ?? ""}`;
      }
    };
    // Connected: the broadcast went out and no worker answered.
    assert.match(await ping(configDir("ours", rabbit.tls!.caFile)), /No nodes replied/);
    const refused = await ping(configDir("other", other.caFile));
    assert.match(refused, /CERTIFICATE_VERIFY_FAILED|certificate verify failed/i);
    assert.doesNotMatch(refused, /No nodes replied/);
  });

  it("is refused by the client when the certificate comes from another CA, or does not name the broker", async () => {
    await assert.rejects(TaskProducer.connect(rabbit.url, { tls: { caFile: other.caFile, serverName: RABBIT_NAME } }), /self[- ]signed|unable to verify|certificate/i);
    await assert.rejects(TaskProducer.connect(rabbit.url, { tls: { caFile: rabbit.tls!.caFile } }), /altnames|does not match|IP: 127\.0\.0\.1/i);
  });
});
