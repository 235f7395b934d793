/**
 * Layer 1: the packages' boundaries. @shopfds/runtime is what any ShopFDS service installs: nothing in it
 * may reach outside its folder (a service could not install that) or use a package it does not declare,
 * and it declares no Pulumi. The reference service (@shopfds/service) uses the runtime only through the
 * package's public entry points, as a service in another repository would.
 */
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { importProblems, ROOT, sourcesOf } from "../support/packages";

const pkg = (dir: string) => JSON.parse(readFileSync(path.join(ROOT, dir, "package.json"), "utf8"));
const runtime = pkg("runtime");
const service = pkg("service");

describe("@shopfds/runtime", () => {
  it("imports nothing outside runtime/ and only the packages it declares (the web frameworks as optional peers)", () => {
    assert.ok(sourcesOf(path.join(ROOT, "runtime")).length >= 25, "the sources were read");
    assert.deepEqual(importProblems(path.join(ROOT, "runtime"), [...Object.keys(runtime.dependencies), ...Object.keys(runtime.peerDependencies)]), []);
    assert.deepEqual(Object.keys(runtime.peerDependencies).sort(), ["express", "express-session", "fastify"]);
    for (const peer of Object.keys(runtime.peerDependencies)) assert.equal(runtime.peerDependenciesMeta[peer]?.optional, true, `${peer} is optional: a service on one framework installs only that one`);
  });

  it("declares no Pulumi package, and only what it needs at run time", () => {
    assert.deepEqual(Object.keys(runtime.dependencies).filter((d) => d.startsWith("@pulumi/")), []);
    // @types/pg too: the public declarations name pg's types (Pool, QueryResult), so a TypeScript user needs them.
    // @opentelemetry/*: the API the runtime's own spans use, and the SDK behind the /tracing entry point.
    const otel = ["api", "core", "exporter-trace-otlp-http", "instrumentation", "instrumentation-http", "instrumentation-ioredis", "instrumentation-pg", "resources", "sdk-trace-base", "sdk-trace-node", "semantic-conventions"].map((p) => `@opentelemetry/${p}`);
    assert.deepEqual(Object.keys(runtime.dependencies).sort(), ["@elastic/ecs-pino-format", ...otel, "@sentry/node", "@types/pg", "amqplib", "croner", "csv-parse", "csv-stringify", "ioredis", "ipaddr.js", "node-pg-migrate", "pg", "pino", "prom-client", "zod"]);
  });

  it("exports each public module as built JavaScript with its declarations, and ships only dist and its documents", () => {
    for (const [subpath, target] of Object.entries(runtime.exports as Record<string, { types: string; default: string } | string>)) {
      if (typeof target === "string") continue; // ./package.json
      assert.match(target.default, /^\.\/dist\/.+\.js$/, subpath);
      assert.equal(target.types, target.default.replace(/\.js$/, ".d.ts"), subpath);
    }
    assert.deepEqual(runtime.files, ["dist", "README.md", "CHANGELOG.md"]);
    assert.ok(readFileSync(path.join(ROOT, "runtime/CHANGELOG.md"), "utf8").includes(`## ${runtime.version}`), "the CHANGELOG has the version");
  });

  it("the check catches an import that leaves the package and one of an undeclared package", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "shopfds-boundary-"));
    try {
      mkdirSync(path.join(dir, "pkg", "db"), { recursive: true });
      writeFileSync(path.join(dir, "pkg", "db", "a.ts"), 'import { x } from "../../components/rabbitmq/render";\nimport pulumi from "@pulumi/pulumi";\nimport { y } from "./b";\nimport { readFileSync } from "node:fs";\nimport os from "os";\n');
      const problems = importProblems(path.join(dir, "pkg"), []);
      assert.equal(problems.length, 2, problems.join("\n"));
      assert.match(problems[0]!, /pkg\/db\/a\.ts: \.\.\/\.\.\/components\/rabbitmq\/render reaches outside .*pkg\/$/);
      assert.match(problems[1]!, /pkg\/db\/a\.ts: @pulumi\/pulumi is not a dependency of the package$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("@shopfds/service (the reference service)", () => {
  it("depends on @shopfds/runtime at its version, and on no Pulumi package", () => {
    assert.equal(service.dependencies["@shopfds/runtime"], runtime.version);
    assert.deepEqual(Object.keys(service.dependencies).filter((d) => d.startsWith("@pulumi/")), []);
  });

  it("uses the runtime only through its public entry points, and reaches nothing outside service/", () => {
    const exported = Object.keys(runtime.exports).map((s) => (s === "." ? "@shopfds/runtime" : `@shopfds/runtime/${s.slice(2)}`));
    const problems: string[] = [];
    for (const file of sourcesOf(path.join(ROOT, "service"))) {
      for (const m of readFileSync(file, "utf8").matchAll(/from\s+["'](@shopfds\/runtime[^"']*)["']/g)) {
        if (!exported.includes(m[1]!)) problems.push(`${path.relative(ROOT, file)}: ${m[1]} is not an entry point of @shopfds/runtime`);
      }
    }
    assert.deepEqual(problems, []);
    assert.deepEqual(importProblems(path.join(ROOT, "service"), Object.keys(service.dependencies)), []);
  });

  it("the queue topology is the runtime's: the broker's renderer imports it, the runtime imports no renderer", () => {
    const renderer = readFileSync(path.join(ROOT, "components/rabbitmq/render.ts"), "utf8");
    assert.match(renderer, /from "\.\.\/\.\.\/runtime\/jobs\/topology"/);
    assert.doesNotMatch(renderer, /export const TASK_QUEUE =/);
  });
});
