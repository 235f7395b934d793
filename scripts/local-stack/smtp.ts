/** The local stack's SMTP sink process (see smtp-sink-server.ts): start, stop by PID, status. */
import { mkdirSync } from "node:fs";
import { createConnection } from "node:net";
import * as path from "node:path";
import type { SmtpOutputs } from "../../runtime/outputs";
import { pidFromFile, spawnDetached, stopPid, waitFor } from "./process";

export interface LocalSmtpOptions {
  readonly dir: string;
  readonly port: number;
}

const pidFile = (o: LocalSmtpOptions) => path.join(o.dir, "smtp-sink.pid");
export const mailDir = (o: LocalSmtpOptions) => path.join(o.dir, "mail");

const pid = (o: LocalSmtpOptions) => pidFromFile(pidFile(o));

export async function startSmtpSink(o: LocalSmtpOptions, log: (m: string) => void = () => {}): Promise<SmtpOutputs> {
  mkdirSync(mailDir(o), { recursive: true });
  if (!pid(o)) {
    log(`smtp sink on 127.0.0.1:${o.port} (mail in ${mailDir(o)})`);
    spawnDetached(process.execPath, ["--import", "tsx", path.join(__dirname, "smtp-sink-server.ts"), String(o.port), mailDir(o)], {
      logFile: path.join(o.dir, "smtp-sink.log"),
      pidFile: pidFile(o),
      cwd: path.resolve(__dirname, "../.."),
    });
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
