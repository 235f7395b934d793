/**
 * Layer 1: the benchmark's load generator and CPU accounting (scripts/bench/wrk.ts, load.lua, cpu.ts),
 * run for real: Debian's wrk against a node:http server on loopback, and /proc read around a child
 * process that burns a known amount of CPU. A figure is only as good as these: every request sent as
 * listed, counted as the server counted it, a failing run refused, CPU charged to the right process.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type IncomingMessage } from "node:http";
import { after, before, describe, it } from "node:test";
import { cpuPerRequest, cpuSnapshot } from "../../scripts/bench/cpu";
import { requestLines, wrk } from "../../scripts/bench/wrk";

describe("bench load generator (wrk + load.lua)", () => {
  const seen: { method: string; url: string; type: string | undefined; body: string }[] = [];
  let answered = 0;
  let url = "";
  const server = createServer((req: IncomingMessage, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, type: req.headers["content-type"], body });
      answered++;
      res.writeHead(req.url === "/fail" ? 503 : req.method === "POST" ? 201 : 200, { "content-type": "application/json" }).end("{}");
    });
  });
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("replays the listed requests in order, bodies as JSON, and counts what the server answered", async () => {
    const requests = [
      { method: "POST" as const, path: "/orders", body: JSON.stringify({ userId: 7, note: "a \"quoted\" é" }) },
      { method: "GET" as const, path: "/orders/42" },
      { method: "POST" as const, path: "/orders", body: JSON.stringify({ userId: 8 }) },
    ];
    seen.length = 0;
    answered = 0;
    const result = await wrk(url, requests, { seconds: 1, connections: 1 });
    assert.ok(result.requests > 50, `${result.requests} requests in 1 s`);
    // wrk counts the responses it read before the end; the server may have answered one more per connection.
    assert.ok(answered - result.requests >= 0 && answered - result.requests <= 1, `server answered ${answered}, wrk counted ${result.requests}`);
    assert.ok(result.p50 > 0 && result.p50 <= result.p99 && result.p99 <= result.max, JSON.stringify(result));
    assert.ok(Math.abs(result.perSecond - result.requests) < result.requests * 0.2, `${result.perSecond} per second over 1 s`);
    // One connection: the server saw the list in order, round and round (wrk takes one request
    // from the script when it starts, so the first seen may be the list's second).
    const offset = requests.findIndex((r) => r.path === seen[0]!.url && r.body === (seen[0]!.body || undefined));
    assert.ok(offset >= 0, JSON.stringify(seen[0]));
    for (let i = 0; i < 9; i++) {
      const want = requests[(i + offset) % 3]!;
      assert.deepEqual(seen[i], { method: want.method, url: want.path, type: want.body ? "application/json" : undefined, body: want.body ?? "" });
    }
  });

  it("refuses a run with answers ≥ 400, saying how many", async () => {
    await assert.rejects(wrk(url, [{ method: "GET", path: "/fail" }], { seconds: 1, connections: 2 }), (e: Error) => /: (\d+) requests, \1 answered ≥ 400$/.test(e.message));
  });

  it("refuses a run that cannot connect, naming the errors", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(wrk(`http://127.0.0.1:${port}`, [{ method: "GET", path: "/" }], { seconds: 1, connections: 1 }), /^Error: wrk failed: unable to connect to 127\.0\.0\.1:\d+ Connection refused$/);
  });

  it("refuses request lines load.lua could not replay, naming the request", () => {
    assert.throws(() => requestLines([{ method: "GET", path: "/a" }, { method: "POST", path: "/b", body: '{"a":\n1}' }]), /^Error: load request 1: body must be one line/);
    assert.throws(() => requestLines([{ method: "GET", path: "orders/1" }]), /^Error: load request 0: path must start with \//);
    assert.equal(requestLines([{ method: "GET", path: "/x" }, { method: "POST", path: "/y", body: "{}" }]), "GET\t/x\nPOST\t/y\t{}\n");
  });
});

describe("bench CPU accounting (/proc)", () => {
  it("charges a process's CPU to its group, per request", async () => {
    const start = cpuSnapshot();
    // A process that uses 300 ms of CPU (by its own count), says so, and stays until killed.
    const burner = spawn(process.execPath, ["-e", "const t = process.cpuUsage(); for (;;) { const u = process.cpuUsage(t); if (u.user + u.system >= 300000) break; } process.stdout.write('done'); setInterval(() => {}, 1000);"], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      await new Promise((resolve) => burner.stdout!.once("data", resolve));
      const perRequest = cpuPerRequest(start, cpuSnapshot(), 10, (pid) => (pid === burner.pid ? "burner" : undefined));
      // 300 ms burned plus Node's start (new since the first snapshot: counted from zero), over 10 requests.
      const burned = perRequest.get("burner") ?? 0;
      assert.ok(burned >= 29 && burned <= 60, `burner: ${burned} ms per request`);
      const values = [...perRequest.values()];
      assert.ok(values.every((ms) => ms > 0));
      assert.deepEqual(values, [...values].sort((a, b) => b - a), "most expensive first");
    } finally {
      burner.kill("SIGKILL");
    }
  });
});
