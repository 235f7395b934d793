/**
 * Layer 3: the packages as their users get them, against the test stack.
 *
 * - @shopfds/runtime packed (`npm pack`) and installed into a new project outside the repository: its
 *   exports are exactly the entry points its README documents; a TypeScript service there type-checks
 *   against it under both module resolutions a service may use (nodenext, bundler) and runs on an empty
 *   database of its own: the runtime's migrations applied with the documented call (and again: nothing
 *   to do), a read routed to the replica, a blacklist add and check, a scheduler tick, a task sent, a
 *   health report.
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
import pg from "pg";
import { RUNTIME_TABLES } from "../../runtime/db/migrate";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
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
let emptyJson = "";
let dropEmpty: () => Promise<void> = async () => undefined;

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
  const empty = await createMigratedDatabase(outputs, `shopfds_consumer_${process.pid}`, { migrate: false });
  dropEmpty = empty.drop;
  emptyJson = JSON.stringify({ ...outputs, postgres: empty.postgres });
});

after(async () => {
  for (const c of children) if (c.pid && isAlive(c.pid)) await stopPid(c.pid, "SIGTERM", 10_000);
  await dropDb();
  await dropEmpty();
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
    // The consumer's own pg (for the scheduler's pool), as a service that runs the scheduler has.
    npm(["install", "--ignore-scripts", path.join(work, tarball), `pg@${rootPkg.dependencies.pg}`, `typescript@${rootPkg.devDependencies.typescript}`, `@types/node@${rootPkg.devDependencies["@types/node"]}`], consumer);
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

  it("exports exactly the entry points its README documents, each built with its declarations", () => {
    const installed = JSON.parse(readFileSync(path.join(consumer, "node_modules/@shopfds/runtime/package.json"), "utf8"));
    const readme = readFileSync(path.join(consumer, "node_modules/@shopfds/runtime/README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Entry points"), readme.indexOf("\n## ", readme.indexOf("## Entry points") + 3));
    const documented = [...section.matchAll(/^\| `(@shopfds\/runtime[^`]*)` \|/gm)].map((m) => m[1]!.replace("@shopfds/runtime", ".") .replace(/^\.\//, "./"));
    const exported = Object.keys(installed.exports).filter((k) => k !== "./package.json");
    assert.ok(documented.length >= 8, `entry points documented: ${documented.join(", ")}`);
    assert.deepEqual(exported.sort(), documented.map((d) => (d === "." ? "." : d)).sort());
    for (const entry of exported) {
      const target = installed.exports[entry] as { types: string; default: string };
      assert.ok(existsSync(path.join(consumer, "node_modules/@shopfds/runtime", target.default)) && existsSync(path.join(consumer, "node_modules/@shopfds/runtime", target.types)), entry);
    }
    // A deep path is not public: Node refuses it (ERR_PACKAGE_PATH_NOT_EXPORTED).
    assert.throws(() => execFileSync(process.execPath, ["-e", 'require("@shopfds/runtime/db/router")'], { cwd: consumer, stdio: "pipe" }), /ERR_PACKAGE_PATH_NOT_EXPORTED/);
    assert.ok(existsSync(path.join(consumer, "node_modules/.bin/shopfds-runtime")), "the migrate command is installed");
  });

  it("runs against the stack on an empty database: the runtime's migrations, a routed read, a blacklist add and check, a scheduler tick, a task sent, a health report", async () => {
    const connection = await amqp.connect(outputs.rabbitmq.url);
    const channel = await connection.createChannel();
    try {
      await channel.assertQueue(queue, { durable: false, autoDelete: false });
      const out = execFileSync(process.execPath, ["consumer.js", queue, listedIp], { cwd: consumer, encoding: "utf8", env: { PATH: process.env.PATH, SHOPFDS_STACK_OUTPUTS: emptyJson } });
      const result = JSON.parse(out.trim().split("\n").at(-1)!);
      assert.deepEqual({ ...result, taskId: typeof result.taskId }, {
        applied: ["0001_blacklist", "0002_scheduler", "0003_blacklist_history", "0004_blacklist_allow", "0005_celery_results"],
        again: [],
        onReplica: true,
        listed: true,
        listedSource: "redis",
        unlisted: false,
        schedulerRuns: 1,
        taskId: "string",
        health: "pass",
        families: true,
      });
      const messages = [await channel.get(queue, { noAck: true }), await channel.get(queue, { noAck: true })];
      assert.deepEqual(messages.map((m) => (m ? m.properties.headers?.task : undefined)), ["consumer.tick", "consumer.ping"], "the scheduler's task, then the one sent");
      assert.equal((messages[1] as amqp.GetMessage).properties.headers?.id, result.taskId);
      // The runtime's tables, and nothing of the service's schema.
      const empty = JSON.parse(emptyJson) as StackOutputs;
      const client = new pg.Client({ host: empty.postgres.primary.host, port: empty.postgres.primary.port, database: empty.postgres.database, user: empty.postgres.user, password: empty.postgres.password });
      await client.connect();
      try {
        const { rows } = await client.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
        assert.deepEqual(rows.map((r) => r.t), [...RUNTIME_TABLES, "shopfds_runtime_migrations"].sort());
      } finally {
        await client.end();
      }
    } finally {
      await channel.deleteQueue(queue).catch(() => undefined);
      await connection.close();
    }
  });

  it("npx shopfds-runtime migrate: status, down and up again on that database", () => {
    const run = (...args: string[]) => execFileSync(path.join(consumer, "node_modules/.bin/shopfds-runtime"), args, { cwd: consumer, encoding: "utf8", env: { PATH: process.env.PATH, SHOPFDS_STACK_OUTPUTS: emptyJson } });
    assert.match(run("migrate", "status"), /applied {2}0001_blacklist\n {2}applied {2}0002_scheduler\n {2}applied {2}0003_blacklist_history\n {2}applied {2}0004_blacklist_allow\n {2}applied {2}0005_celery_results/);
    assert.match(run("migrate", "down", "5"), /undid 5 runtime migration\(s\)/);
    assert.match(run("migrate", "status"), /pending {2}0001_blacklist\n {2}pending {2}0002_scheduler\n {2}pending {2}0003_blacklist_history\n {2}pending {2}0004_blacklist_allow\n {2}pending {2}0005_celery_results/);
    assert.match(run("migrate", "up"), /applied 5 runtime migration\(s\)/);
    assert.throws(() => run("migrate", "sideways"), (e: { stderr: string }) => /usage: shopfds-runtime migrate up \| down \[N\] \| status/.test(e.stderr));
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
