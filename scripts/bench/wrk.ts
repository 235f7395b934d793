/**
 * HTTP load for the bench: wrk (Debian's package, C, epoll) in a process of its own, replaying a list of
 * requests (load.lua). The load generator used to be autocannon inside the bench's Node process: on this
 * 2-core machine it took most of a core from the server it measured (the bare node:http server reached
 * only ×0.52 of the in-process query it served). wrk does the same work for a fraction of that.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface LoadRequest {
  readonly method: "GET" | "POST";
  readonly path: string;
  /** A JSON body (sent as application/json); one line. */
  readonly body?: string;
}

export interface LoadResult {
  readonly requests: number;
  readonly perSecond: number;
  /** Latency percentiles and maximum, ms. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

const SCRIPT = path.join(__dirname, "load.lua");

/** The file load.lua replays: "METHOD<TAB>PATH<TAB>BODY" per line. */
export function requestLines(requests: readonly LoadRequest[]): string {
  return requests
    .map((r, i) => {
      if (!/^\/\S*$/.test(r.path)) throw new Error(`load request ${i}: path must start with / and hold no blank (got ${JSON.stringify(r.path)})`);
      if (r.body !== undefined && /[\t\r\n]/.test(r.body)) throw new Error(`load request ${i}: body must be one line without tabs (got ${JSON.stringify(r.body.slice(0, 40))}…)`);
      return `${r.method}\t${r.path}${r.body !== undefined ? `\t${r.body}` : ""}\n`;
    })
    .join("");
}

/**
 * Runs wrk against `url` for `seconds` over `connections` keep-alive connections (one wrk thread),
 * cycling through `requests`. Rejects when any request failed (connection, read, write, timeout) or
 * was answered with a status ≥ 400, naming the counts: a figure from a failing run would be wrong.
 */
export async function wrk(url: string, requests: readonly LoadRequest[], o: { seconds: number; connections: number; threads?: number }): Promise<LoadResult> {
  if (requests.length === 0) throw new Error("wrk: no requests to send");
  const dir = mkdtempSync(path.join(tmpdir(), "shopfds-wrk-"));
  try {
    const file = path.join(dir, "requests.txt");
    writeFileSync(file, requestLines(requests));
    const args = ["-t", String(o.threads ?? 1), "-c", String(o.connections), "-d", `${o.seconds}s`, "--timeout", "10s", "-s", SCRIPT, url, "--", file, "application/json"];
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile("wrk", args, { maxBuffer: 1 << 20 }, (error, out, err) => {
        if ((error as NodeJS.ErrnoException | null)?.code === "ENOENT") return reject(new Error("wrk is not installed: run make setup (or apt-get install wrk)"));
        if (error) return reject(new Error(`wrk failed: ${err.trim() || error.message}`));
        resolve(out);
      }),
    );
    const line = /^WRK-RESULT (.+)$/m.exec(stdout)?.[1];
    if (!line) throw new Error(`wrk printed no result:\n${stdout}`);
    const r = JSON.parse(line) as { requests: number; durationUs: number; p50Us: number; p99Us: number; maxUs: number; errors: Record<string, number> };
    const failed = Object.entries(r.errors).filter(([, n]) => n > 0);
    if (failed.length > 0 || r.requests === 0) throw new Error(`wrk ${requests[0]!.method} ${url}: ${r.requests} requests, ${failed.map(([k, n]) => `${n} ${k === "status" ? "answered ≥ 400" : `${k} errors`}`).join(", ") || "none completed"}`);
    return { requests: r.requests, perSecond: r.requests / (r.durationUs / 1e6), p50: r.p50Us / 1000, p99: r.p99Us / 1000, max: r.maxUs / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
