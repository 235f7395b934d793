/** The local stack's SMTP sink process (see smtp-sink-server.ts): start, stop by PID, status. */
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import * as path from "node:path";
import type { SmtpOutputs } from "../../runtime/outputs";
import { isAlive, stopPid, waitFor } from "./process";

export interface LocalSmtpOptions {
  readonly dir: string;
  readonly port: number;
}

const pidFile = (o: LocalSmtpOptions) => path.join(o.dir, "smtp-sink.pid");
export const mailDir = (o: LocalSmtpOptions) => path.join(o.dir, "mail");

function pid(o: LocalSmtpOptions): number | undefined {
  if (!existsSync(pidFile(o))) return undefined;
  const n = Number(readFileSync(pidFile(o), "utf8").trim());
  return Number.isInteger(n) && n > 0 && isAlive(n) ? n : undefined;
}

export async function startSmtpSink(o: LocalSmtpOptions, log: (m: string) => void = () => {}): Promise<SmtpOutputs> {
  mkdirSync(mailDir(o), { recursive: true });
  if (!pid(o)) {
    log(`smtp sink on 127.0.0.1:${o.port} (mail in ${mailDir(o)})`);
    const out = openSync(path.join(o.dir, "smtp-sink.log"), "a");
    const child = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "smtp-sink-server.ts"), String(o.port), mailDir(o)], { detached: true, stdio: ["ignore", out, out], cwd: path.resolve(__dirname, "../..") });
    closeSync(out);
    child.unref();
    writeFileSync(pidFile(o), `${child.pid}\n`);
  }
  await waitFor(`the SMTP sink on 127.0.0.1:${o.port}`, 20_000, () =>
    new Promise<boolean | undefined>((resolve) => {
      const s = createConnection({ host: "127.0.0.1", port: o.port });
      s.once("data", (d) => (s.destroy(), resolve(d.toString().startsWith("220") ? true : undefined)));
      s.once("error", () => resolve(undefined));
    }),
  );
  return { host: "127.0.0.1", port: o.port, secure: false, from: "ShopFDS <no-reply@shopfds.local>" };
}

export async function stopSmtpSink(o: LocalSmtpOptions): Promise<string[]> {
  const p = pid(o);
  if (!p) return [];
  await stopPid(p, "SIGTERM");
  return ["sink"];
}

export function smtpStatus(o: LocalSmtpOptions): { name: string; port: number; pid?: number }[] {
  return [{ name: "sink", port: o.port, pid: pid(o) }];
}
