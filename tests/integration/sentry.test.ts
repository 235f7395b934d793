/**
 * Layer 3: an exception captured by the runtime reaches a local Sentry envelope sink (an HTTP server
 * speaking Sentry's ingestion endpoint) with its stack trace, environment, release and user.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { gunzipSync } from "node:zlib";
import { after, before, describe, it } from "node:test";
import { captureError, flushSentry, initSentry } from "../../runtime/observability/sentry";

const envelopes: { url: string; body: string }[] = [];
let sink: Server;

before(async () => {
  sink = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      envelopes.push({ url: req.url ?? "", body: (req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw).toString("utf8") });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => sink.listen(0, "127.0.0.1", () => r()));
  const port = (sink.address() as { port: number }).port;
  assert.equal(initSentry({ dsn: `http://publickey@127.0.0.1:${port}/7`, environment: "staging", release: "shopfds@1.2.3", service: "orders" }), true);
});

after(() => sink.close());

function checkout(): never {
  throw new TypeError("payment gateway returned no token");
}

describe("Sentry", () => {
  it("US4-4: sends a captured exception with its stack trace, environment, release, service and user", async () => {
    let eventId = "";
    try {
      checkout();
    } catch (error) {
      eventId = captureError(error, { userId: 42, tags: { route: "/orders" } });
    }
    assert.equal(await flushSentry(5000), true);
    const envelope = envelopes.find((e) => e.body.includes(eventId.replace(/-/g, "")));
    assert.ok(envelope, `an envelope for event ${eventId} (got ${envelopes.length})`);
    assert.match(envelope.url, /^\/api\/7\/envelope\/\?sentry_version=7&sentry_key=publickey&/);
    const lines = envelope.body.split("\n").filter(Boolean);
    const event = JSON.parse(lines.find((l) => l.includes('"exception"'))!);
    const exception = event.exception.values[0];
    assert.equal(exception.type, "TypeError");
    assert.equal(exception.value, "payment gateway returned no token");
    assert.ok(exception.stacktrace.frames.some((f: { function?: string }) => f.function === "checkout"), "the stack trace names the throwing function");
    assert.equal(event.environment, "staging");
    assert.equal(event.release, "shopfds@1.2.3");
    assert.deepEqual(event.user, { id: "42" });
    assert.equal(event.tags.service, "orders");
    assert.equal(event.tags.route, "/orders");
  });
});
