/**
 * The local stack's Slack-compatible webhook sink: accepts every POST (as Slack's incoming webhooks do,
 * answering "ok") and keeps each body as a JSON file, so Alertmanager's Slack notifications can be
 * read by people and tests. Started detached and stopped by its PID.
 *
 *   node --import tsx service/bin/webhook-sink.ts <port> <dir>
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";

const [port, dir] = [Number(process.argv[2]), String(process.argv[3])];
mkdirSync(dir, { recursive: true });
let n = 0;
const server = createServer((req, res) => {
  if (req.method !== "POST") {
    res.writeHead(req.url === "/-/ready" ? 200 : 405).end(req.url === "/-/ready" ? "ready" : "POST only");
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const name = `${Date.now()}-${process.pid}-${++n}.json`;
    const record = { path: req.url, receivedAt: new Date().toISOString(), body: Buffer.concat(chunks).toString("utf8") };
    writeFileSync(path.join(dir, `.${name}`), JSON.stringify(record));
    renameSync(path.join(dir, `.${name}`), path.join(dir, name));
    res.writeHead(200, { "content-type": "text/plain" }).end("ok");
  });
});
server.listen(port, "127.0.0.1", () => console.log(`webhook sink on 127.0.0.1:${port}, messages in ${dir}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
