/**
 * Layer 3: the packages as their users get them, against the test stack.
 *
 * - @shopfds/runtime packed (`npm pack`) and installed into a new project outside the repository: a
 *   TypeScript service there type-checks against it under both module resolutions a service may use
 *   (nodenext, bundler) and runs: a read routed to the replica, a blacklist check, a task sent, a health
 *   report.
 * - The service image without Docker: the Dockerfile's own install command (production dependencies of
 *   the service package) in an empty folder, the built dist folders beside it, then its compiled entry
 *   points started with plain node: the migrations listed, the service answering /health/ready.
 *
 * Packages come from npm's cache (`npm ci` filled it), so nothing here needs the network.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as amqp from "amqplib";
import { Database } from "../../runtime/db/router";
import { Blacklist } from "../../runtime/fds/blacklist";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { connectRedisCluster } from "../../runtime/redis/client";
import { isAlive, stopPid } from "../../scripts/local-stack/process";
import { createMigratedDatabase, until } from "../support/databases";
import { buildPackages, dockerfileRuns, ROOT } from "../support/packages";
import { createServer } from "node:net";

const work = mkdtempSync(path.join(tmpdir(), "shopfds-packages-"));
const rootPkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));
const children: ChildProcess[] = [];
let outputs: StackOutputs;
let stackJson = "";
let dropDb: () => Promise<void> = async () => undefined;

const npm = (args: string[], cwd: string) => execFileSync("npm", [...args, "--no-audit", "--no-fund", "--prefer-offline"], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
const du = (dir: string) => Number(execFileSync("du", ["-sk", dir], { encoding: "utf8" }).split("\t")[0]) * 1024;

before(async () => {
  buildPackages();
  outputs = await loadStackOutputs();
  const created = await createMigratedDatabase(outputs, `shopfds_packages_${process.pid}`);
  dropDb = created.drop;
  stackJson = JSON.stringify({ ...outputs, postgres: created.postgres });
});

after(async () => {
  for (const c of children) if (c.pid && isAlive(c.pid)) await stopPid(c.pid, "SIGTERM", 10_000);
  await dropDb();
  rmSync(work, { recursive: true, force: true });
});

describe("@shopfds/runtime, packed and installed by another project", () => {
  const consumer = path.join(work, "consumer");
  const queue = `consumer.${process.pid}`;
  const listedIp = `198.51.100.${(process.pid % 200) + 20}`;

  it("installs from its tarball: JavaScript with declarations, its own dependencies, no Pulumi", () => {
    const tarball = npm(["pack", path.join(ROOT, "runtime"), "--pack-destination", work, "--silent"], ROOT).trim().split("\n").at(-1)!;
    const files = execFileSync("tar", ["-tzf", path.join(work, tarball)], { encoding: "utf8" }).split("\n").filter(Boolean);
    assert.ok(files.includes("package/dist/index.js") && files.includes("package/dist/index.d.ts") && files.includes("package/README.md"), files.slice(0, 10).join(", "));
    assert.deepEqual(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")), [], "no TypeScript sources in the package");
    cpSync(path.join(ROOT, "tests/fixtures/runtime-consumer"), consumer, { recursive: true });
    npm(["install", "--ignore-scripts", path.join(work, tarball), `typescript@${rootPkg.devDependencies.typescript}`, `@types/node@${rootPkg.devDependencies["@types/node"]}`], consumer);
    assert.ok(existsSync(path.join(consumer, "node_modules/@shopfds/runtime/dist/db/router.js")));
    assert.equal(existsSync(path.join(consumer, "node_modules/@pulumi")), false, "no Pulumi comes with it");
  });

  it("a TypeScript service importing it type-checks under nodenext and under bundler resolution", () => {
    const tsc = (project: string) => execFileSync(process.execPath, [path.join(consumer, "node_modules/typescript/bin/tsc"), "-p", project], { cwd: consumer, encoding: "utf8" });
    assert.equal(tsc("tsconfig.bundler.json"), "");
    assert.equal(tsc("tsconfig.json"), "", "nodenext (and emits consumer.js)");
    // The check can fail: a wrong argument type is refused against the package's declarations.
    writeFileSync(path.join(consumer, "broken.ts"), 'import { Database } from "@shopfds/runtime";\nawait Database.connect({ primary: "localhost" });\n');
    assert.throws(() => tsc("tsconfig.broken.json"), (e: { stdout: string }) => /broken\.ts.*error TS2/.test(e.stdout));
  });

  it("runs against the stack: a read routed to the replica, a blacklist check, a task sent, a health report", async () => {
    // What the consumer will find: a listed IP, and a queue for its task.
    const db = await Database.connect(JSON.parse(stackJson).postgres);
    const redis = connectRedisCluster(outputs.redis);
    const blacklist = new Blacklist(redis, db, { cardHashKeys: outputs.fds.cardHashKeys });
    const connection = await amqp.connect(outputs.rabbitmq.url);
    const channel = await connection.createChannel();
    try {
      await blacklist.add({ type: "ip", value: listedIp, reason: "packages test", source: "test", ttlSeconds: 300 });
      await channel.assertQueue(queue, { durable: false, autoDelete: false });
      const out = execFileSync(process.execPath, ["consumer.js", queue, listedIp], { cwd: consumer, encoding: "utf8", env: { PATH: process.env.PATH, SHOPFDS_STACK_OUTPUTS: stackJson } });
      const result = JSON.parse(out.trim().split("\n").at(-1)!);
      assert.deepEqual({ ...result, taskId: typeof result.taskId }, { onReplica: true, listed: true, listedSource: "redis", unlisted: false, taskId: "string", health: "pass" });
      const message = await channel.get(queue, { noAck: true });
      assert.ok(message, "the task is in its queue");
      assert.equal(message.properties.headers?.task, "consumer.ping");
      assert.equal(message.properties.headers?.id, result.taskId);
    } finally {
      await blacklist.remove("ip", listedIp).catch(() => undefined);
      await channel.deleteQueue(queue).catch(() => undefined);
      await connection.close();
      redis.disconnect();
      await db.close();
    }
  });
});

describe("the service image's contents, without Docker", () => {
  const image = path.join(work, "image");

  it("the Dockerfile's install takes the service's production dependencies only: no TypeScript, tsx or Pulumi", (t) => {
    for (const f of ["package.json", "package-lock.json", "runtime/package.json", "service/package.json"]) cpSync(path.join(ROOT, f), path.join(image, f));
    const [install] = dockerfileRuns("deps");
    assert.equal(install![0], "npm");
    npm(install!.slice(1), image);
    for (const dir of ["runtime/dist", "service/dist"]) cpSync(path.join(ROOT, dir), path.join(image, dir), { recursive: true });
    const modules = readdirSync(path.join(image, "node_modules"));
    for (const absent of ["typescript", "tsx", "esbuild", "@pulumi", "ts-node"]) assert.equal(modules.includes(absent), false, `${absent} is not in the image`);
    t.diagnostic(`production node_modules: ${(du(path.join(image, "node_modules")) / 2 ** 20).toFixed(0)} MiB, ${modules.length} top-level entries`);
  });

  it("its compiled entry points run with plain node: the migrations listed, the service ready", async () => {
    const env = { PATH: process.env.PATH, SHOPFDS_STACK_OUTPUTS: stackJson, NODE_ENV: "production" };
    const status = execFileSync(process.execPath, ["service/dist/bin/migrate.js", "status"], { cwd: image, encoding: "utf8", env });
    assert.match(status, /applied {2}0008_reevaluations_task_archive/);
    assert.doesNotMatch(status, /pending/, "the test database is migrated; the compiled migrations are the same ones");
    const port = await freePort();
    const service = spawn(process.execPath, ["service/dist/bin/service.js", "--port", String(port), "--host", "127.0.0.1"], { cwd: image, env, stdio: ["ignore", "ignore", "pipe"] });
    children.push(service);
    let stderr = "";
    service.stderr!.on("data", (d) => (stderr += d));
    await until("the compiled service ready", 30_000, async () => {
      if (service.exitCode !== null) throw new Error(`the service exited ${service.exitCode}: ${stderr}`);
      return (await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => undefined))?.status === 200;
    });
    const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { status: string; checks: Record<string, unknown> };
    assert.equal(health.status, "pass");
    assert.ok(Object.keys(health.checks).some((k) => k.startsWith("postgres")), Object.keys(health.checks).join(", "));
  });
});
