/**
 * The ShopFDS processes on the local stack (what `make dev` runs after migrate and seed, and what the
 * Pulumi stacks run as containers of the service image): the reference service, one worker and the
 * scheduler, each started detached with its PID recorded and stopped by it. Prometheus is told where to
 * scrape the service and the worker through its file_sd target file. A dev admin account is provisioned
 * with a password generated once and kept in a 0600 file (never printed).
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { Database } from "../../runtime/db/router";
import type { StackOutputs } from "../../runtime/outputs";
import { upsertAccount } from "../../service/shop/accounts";
import { isAlive, pidFromFile, spawnDetached, stopPid, waitFor } from "./process";

export interface LocalAppsOptions {
  readonly dir: string;
  readonly outputsFile: string;
  readonly servicePort: number;
  readonly workerMetricsPort: number;
  /** Prometheus's file_sd file for the ShopFDS services (monitoring's serviceTargetsFile). */
  readonly targetsFile: string;
  /** Where the apps export their traces (OTLP/HTTP): the stack's trace sink. */
  readonly otlpEndpoint?: string;
}

const ROOT = path.resolve(__dirname, "../..");
const APPS = ["service", "worker", "scheduler"] as const;
type App = (typeof APPS)[number];
const pidFile = (o: LocalAppsOptions, app: App) => path.join(o.dir, `${app}.pid`);
export const appLogFile = (o: LocalAppsOptions, app: App) => path.join(o.dir, `${app}.log`);
export const adminPasswordFile = (o: Pick<LocalAppsOptions, "dir">) => path.join(o.dir, "admin-password");
export const DEV_ADMIN_EMAIL = "admin@shopfds.local";
export const serviceUrl = (o: LocalAppsOptions) => `http://127.0.0.1:${o.servicePort}`;

function argv(o: LocalAppsOptions, app: App): string[] {
  switch (app) {
    case "service":
      return ["service/bin/service.ts", "--port", String(o.servicePort), "--host", "127.0.0.1"];
    case "worker":
      return ["service/bin/worker.ts", "--concurrency", "4", "--metrics-port", String(o.workerMetricsPort)];
    case "scheduler":
      return ["service/bin/scheduler.ts"];
  }
}

/** Waits for `probe`, failing at once (with the end of its log) if the process died. */
async function ready(o: LocalAppsOptions, app: App, pid: number, what: string, probe: () => Promise<boolean | undefined>): Promise<void> {
  const outcome = await waitFor(what, 60_000, async () => (!isAlive(pid) ? "died" : await probe()));
  if (outcome === "died") {
    const tail = existsSync(appLogFile(o, app)) ? readFileSync(appLogFile(o, app), "utf8").trim().split("\n").slice(-10).join("\n") : "";
    throw new Error(`the ${app} exited during start-up; the end of ${appLogFile(o, app)}:\n${tail}`);
  }
}

const httpOk = (url: string) => async () => ((await fetch(url, { signal: AbortSignal.timeout(2000) }).catch(() => undefined))?.ok ? true : undefined);

/** The dev admin (admin@shopfds.local); its password is generated on first use and kept in a 0600 file. */
export async function provisionDevAdmin(o: Pick<LocalAppsOptions, "dir">, outputs: StackOutputs): Promise<void> {
  const file = adminPasswordFile(o);
  if (!existsSync(file)) writeFileSync(file, randomBytes(18).toString("base64url"), { mode: 0o600 });
  const db = await Database.connect(outputs.postgres);
  try {
    await upsertAccount(db, { email: DEV_ADMIN_EMAIL, password: readFileSync(file, "utf8").trim(), name: "Dev Admin", role: "admin" });
  } finally {
    await db.close();
  }
}

export async function startApps(o: LocalAppsOptions, outputs: StackOutputs, log: (m: string) => void = () => {}): Promise<void> {
  mkdirSync(o.dir, { recursive: true });
  await provisionDevAdmin(o, outputs);
  const env: NodeJS.ProcessEnv = { ...process.env, SHOPFDS_OUTPUTS_FILE: o.outputsFile, SHOPFDS_PUBLIC_URL: serviceUrl(o), SHOPFDS_METRICS_HOST: "127.0.0.1", SHOPFDS_ENVIRONMENT: "dev" };
  // Traces to the stack's sink, exported each second (the SDK's default batch delay is 5 s).
  if (o.otlpEndpoint) Object.assign(env, { OTEL_EXPORTER_OTLP_ENDPOINT: o.otlpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "1000" });
  delete env.SHOPFDS_STACK_OUTPUTS;
  const pids = {} as Record<App, number>;
  for (const app of APPS) {
    pids[app] = pidFromFile(pidFile(o, app)) ?? (log(`${app}: node ${argv(o, app).join(" ")}`), spawnDetached(process.execPath, ["--import", "tsx", ...argv(o, app)], { logFile: appLogFile(o, app), pidFile: pidFile(o, app), env, cwd: ROOT }));
  }
  await Promise.all([
    ready(o, "service", pids.service, `the service's /health/ready on ${serviceUrl(o)}`, httpOk(`${serviceUrl(o)}/health/ready`)),
    ready(o, "worker", pids.worker, `the worker's /metrics on 127.0.0.1:${o.workerMetricsPort}`, httpOk(`http://127.0.0.1:${o.workerMetricsPort}/metrics`)),
    ready(o, "scheduler", pids.scheduler, "the scheduler", async () => (readFileSync(appLogFile(o, "scheduler"), "utf8").includes(`"message":"scheduler running `) ? true : undefined)),
  ]);
  mkdirSync(path.dirname(o.targetsFile), { recursive: true });
  writeFileSync(o.targetsFile, JSON.stringify([{ targets: [`127.0.0.1:${o.servicePort}`, `127.0.0.1:${o.workerMetricsPort}`], labels: { environment: "dev" } }], null, 2) + "\n");
}

export async function stopApps(o: LocalAppsOptions): Promise<string[]> {
  const stopped: string[] = [];
  // The service first (no new work), the scheduler, then the worker (it finishes running tasks).
  for (const app of ["service", "scheduler", "worker"] as const) {
    const pid = pidFromFile(pidFile(o, app));
    if (!pid) continue;
    await stopPid(pid, "SIGTERM", 35_000);
    stopped.push(app);
  }
  if (existsSync(o.targetsFile)) writeFileSync(o.targetsFile, "[]\n");
  return stopped;
}

export function appsStatus(o: LocalAppsOptions): { name: string; port?: number; pid?: number }[] {
  return APPS.map((app) => ({ name: app, ...(app === "service" ? { port: o.servicePort } : app === "worker" ? { port: o.workerMetricsPort } : {}), pid: pidFromFile(pidFile(o, app)) }));
}
