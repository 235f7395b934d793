/** Layer 1: the services' log lines are ECS JSON that Logstash indexes as they are, with no secrets. */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { createLogger, LOG_BUFFER_BYTES, withTraceContext } from "../../runtime/observability/logger";

function capture() {
  const lines: Record<string, any>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { lines, destination };
}

describe("logger", () => {
  it("writes a logged error as ECS JSON with service, level, message, error fields and trace context", () => {
    const { lines, destination } = capture();
    const log = withTraceContext(createLogger({ service: "fds", environment: "dev", version: "1.2.3", destination }), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    log.error({ err: new TypeError("card service unreachable") }, "evaluation failed");
    const line = lines[0]!;
    assert.equal(line["log.level"], "error");
    assert.equal(line.message, "evaluation failed");
    assert.match(line["@timestamp"], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(typeof line["ecs.version"], "string");
    // Dotted keys are ECS too; Elasticsearch expands them into objects.
    assert.deepEqual([line["service.name"], line["service.environment"], line["service.version"], line["event.dataset"]], ["fds", "dev", "1.2.3", "fds"]);
    assert.equal(line.error.type, "TypeError");
    assert.equal(line.error.message, "card service unreachable");
    assert.match(line.error.stack_trace, /TypeError: card service unreachable\n\s+at /);
    assert.deepEqual([line.trace.id, line.span.id], ["4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"]);
  });

  it("redacts passwords, tokens, cookies and card numbers", () => {
    const { lines, destination } = capture();
    createLogger({ service: "ecommerce", environment: "dev", destination }).info({ password: "hunter2", user: { password: "x", card: "4111111111111111" }, req: { headers: { authorization: "Bearer abc", cookie: "sid=1" } } }, "login");
    const text = JSON.stringify(lines[0]);
    for (const secret of ["hunter2", "4111111111111111", "Bearer abc", "sid=1"]) assert.ok(!text.includes(secret), secret);
    assert.equal(lines[0]!.password, "[redacted]");
  });

  it("ignores a malformed traceparent", () => {
    const { lines, destination } = capture();
    withTraceContext(createLogger({ service: "x", environment: "dev", destination }), "garbage").info("hello");
    assert.equal(lines[0]!.trace, undefined);
  });
});

describe("logger on standard output (asynchronous, shared)", () => {
  // A child process logs through two loggers on the default destination, then leaves at once: by
  // process.exit, or by an uncaught exception. Every line must be there, whole.
  const child = (ending: string) => {
    const code = `
      const { createLogger } = require(${JSON.stringify(require.resolve("../../runtime/observability/logger"))});
      const a = createLogger({ service: "a", environment: "dev" });
      const b = createLogger({ service: "b", environment: "dev" });
      for (let i = 0; i < 5000; i++) (i % 2 ? a : b).info({ labels: { i } }, "line " + i + " " + "x".repeat(200));
      ${ending}`;
    return spawnSync(process.execPath, ["--import", "tsx", "-e", code], { encoding: "utf8", maxBuffer: 64 << 20 });
  };
  for (const [what, ending, status] of [
    ["process.exit", "process.exit(0);", 0],
    ["an uncaught exception", "throw new Error('crash');", 1],
  ] as const) {
    it(`loses no line when the process ends by ${what}, and interleaves none`, () => {
      const r = child(ending);
      assert.equal(r.status, status, r.stderr.slice(-500));
      const lines = r.stdout.trim().split("\n");
      assert.equal(lines.length, 5000);
      const seen = lines.map((l) => (JSON.parse(l) as { labels: { i: number } }).labels.i).sort((x, y) => x - y);
      assert.deepEqual(seen, Array.from({ length: 5000 }, (_, i) => i));
    });
  }

  it("writes a quiet process's line while it runs, though far less than a batch is gathered", async () => {
    // One line, well under LOG_BUFFER_BYTES, then the process idles for a minute: the periodic flush
    // writes it (a batch-only buffer would hold it until the exit).
    const code = `
      const { createLogger } = require(${JSON.stringify(require.resolve("../../runtime/observability/logger"))});
      createLogger({ service: "quiet", environment: "dev" }).info("only line");
      setTimeout(() => {}, 60_000);`;
    const p = spawn(process.execPath, ["--import", "tsx", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        p.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("\n")) resolve(out.trim());
        });
        p.once("exit", (c) => reject(new Error(`exited (${c}) before writing its line`)));
      });
      assert.ok(line.length < LOG_BUFFER_BYTES);
      assert.equal((JSON.parse(line) as { message: string }).message, "only line");
      assert.equal(p.exitCode, null, "written while the process still runs");
    } finally {
      p.kill("SIGKILL");
    }
  });
});
