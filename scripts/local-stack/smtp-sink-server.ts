/**
 * The local stack's SMTP sink: accepts every message on loopback (no auth, no relay) and keeps it as an
 * .eml file, so the e-mail tasks run against a real SMTP conversation and tests read what was "sent".
 * Started detached by the local stack and stopped by its PID.
 *
 *   node --import tsx scripts/local-stack/smtp-sink-server.ts <port> <mail dir>
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { SMTPServer } from "smtp-server";

const [port, dir] = [Number(process.argv[2]), String(process.argv[3])];
mkdirSync(dir, { recursive: true });
let n = 0;
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS"],
  banner: "ShopFDS local SMTP sink",
  onData(stream, session, callback) {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      const name = `${Date.now()}-${process.pid}-${++n}.eml`;
      const envelope = `X-Sink-Mail-From: ${session.envelope.mailFrom ? session.envelope.mailFrom.address : ""}\r\nX-Sink-Rcpt-To: ${session.envelope.rcptTo.map((r) => r.address).join(", ")}\r\n`;
      // Written under a temporary name, then renamed: a reader never sees half a message.
      writeFileSync(path.join(dir, `.${name}`), Buffer.concat([Buffer.from(envelope), ...chunks]));
      renameSync(path.join(dir, `.${name}`), path.join(dir, name));
      callback();
    });
  },
});
server.on("error", (e) => console.error(`smtp sink: ${e.message}`));
server.listen(port, "127.0.0.1", () => console.log(`smtp sink on 127.0.0.1:${port}, mail in ${dir}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
