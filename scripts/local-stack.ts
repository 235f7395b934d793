/**
 * The local stack's command line: real servers on loopback, started from the same rendered configs the
 * Pulumi stacks ship. `make dev`, `make down`, `make clean`, `make status` and `make outputs` call it.
 *
 *   tsx scripts/local-stack.ts <start|apps|stop|status|health|logs|clean|outputs> [--profile dev|test] [--lines N]
 * `apps` starts the service, a worker and the scheduler on a started, migrated stack (`make dev` runs it
 * after migrate and seed); `stop` and `clean` stop them first. `health` prints each component's health
 * in one table (exit 1 if one fails), `logs` follows every process's log (scripts/local-stack/ops.ts).
 */
import { readFileSync, existsSync } from "node:fs";
import { adminPasswordFile, appsStatus, DEV_ADMIN_EMAIL, serviceUrl, startApps } from "./local-stack/apps";
import { parseStackOutputs } from "../runtime/outputs";
import { appsOptions, cleanStack, monitoringOptions, outputsFile, profile, smtpOptions, stackStatus, startStack, stopStack } from "./local-stack/stack";
import { mailDir } from "./local-stack/smtp";
import { webhookDir } from "./local-stack/monitoring";
import { serverVersions, serviceLines, stackLines } from "./local-stack/addresses";
import { parseStackConfig } from "../components/config";
import { followLogs, formatHealth, healthTable } from "./local-stack/ops";

/** The server images the Docker and Kubernetes stacks run by default (parseStackConfig's defaults). */
function pinnedImages(): string {
  const docker = parseStackConfig({ platform: "docker" });
  return [docker.postgres.image, docker.redis.image, docker.rabbitmq.image].join(", ");
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const i = rest.indexOf("--profile");
  const p = profile(i >= 0 ? rest[i + 1] ?? "" : "dev");
  const started = performance.now();
  const log = (m: string) => process.stderr.write(`[local-stack ${p.name} +${((performance.now() - started) / 1000).toFixed(1)}s] ${m}\n`);

  switch (command) {
    case "start": {
      const { outputs, timings } = await startStack(p, log);
      const pg = outputs.postgres;
      const smtpMailDir = mailDir(smtpOptions(p));
      log(`up in ${((performance.now() - started) / 1000).toFixed(1)} s (postgres ${(timings.postgres / 1000).toFixed(1)} s, redis ${(timings.redis / 1000).toFixed(1)} s, rabbitmq ${(timings.rabbitmq / 1000).toFixed(1)} s, side by side)`);
      const versions = await serverVersions(outputs);
      console.log(
        [
          `ShopFDS local stack "${p.name}" is up (data in ${p.dir}):`,
          ...stackLines(outputs, versions, { smtp: `mail kept as .eml in ${smtpMailDir}`, monitoring: `Slack messages kept in ${webhookDir(monitoringOptions(p))}` }),
          `                       (Debian's packages; the Docker and Kubernetes stacks run the images they pin: ${pinnedImages()})`,
          `  Outputs (with the password): ${outputsFile(p)}  — or \`make outputs\``,
          `  Services find it with SHOPFDS_OUTPUTS_FILE=${outputsFile(p)}`,
        ].join("\n"),
      );
      return 0;
    }
    case "apps": {
      if (!existsSync(outputsFile(p))) {
        console.error("the local stack is not started: run make dev");
        return 1;
      }
      const outputs = parseStackOutputs(JSON.parse(readFileSync(outputsFile(p), "utf8")), outputsFile(p));
      const o = appsOptions(p);
      await startApps(o, outputs, log);
      const url = serviceUrl(o);
      console.log(
        [
          `ShopFDS processes on the "${p.name}" stack (logs in ${o.dir}):`,
          ...serviceLines(url, DEV_ADMIN_EMAIL, adminPasswordFile(o)),
          `  Worker               4 concurrent tasks; metrics http://127.0.0.1:${o.workerMetricsPort}/metrics   Scheduler: FDS batch 00:00, archive Sun 02:00`,
        ].join("\n"),
      );
      return 0;
    }
    case "stop": {
      const stopped = await stopStack(p);
      console.log(stopped.length ? `stopped: ${stopped.join(", ")} (data kept in ${p.dir})` : "nothing was running");
      return 0;
    }
    case "clean": {
      const stopped = await cleanStack(p);
      console.log(`${stopped.length ? `stopped: ${stopped.join(", ")}; ` : ""}removed ${p.dir}`);
      return 0;
    }
    case "status": {
      const status = stackStatus(p);
      if (status.postgres.length === 0) {
        console.log(`local stack "${p.name}" has never been started (no ${p.dir})`);
        return 3;
      }
      for (const m of status.postgres) console.log(`postgres ${m.name.padEnd(10)} 127.0.0.1:${m.port}  ${m.pid ? `running (pid ${m.pid})` : "stopped"}`);
      for (const m of status.redis) console.log(`redis    ${m.name.padEnd(10)} 127.0.0.1:${m.port}  ${m.pid ? `running (pid ${m.pid})` : "stopped"}`);
      for (const m of status.rabbitmq) console.log(`rabbitmq ${m.name.padEnd(10)} 127.0.0.1:${m.port}  ${m.pid ? `running (pid ${m.pid})` : "stopped"}`);
      for (const m of status.smtp) console.log(`smtp     ${m.name.padEnd(10)} 127.0.0.1:${m.port}  ${m.pid ? `running (pid ${m.pid})` : "stopped"}`);
      for (const m of status.monitoring) console.log(`monitor  ${m.name.padEnd(13)} 127.0.0.1:${m.port}  ${m.pid ? `running (pid ${m.pid})` : "stopped"}`);
      for (const m of status.apps) console.log(`app      ${m.name.padEnd(10)} ${m.port ? `127.0.0.1:${m.port}` : "(no port)      "}  ${m.pid ? `running (pid ${m.pid})` : "stopped"}`);
      return [...status.postgres, ...status.redis, ...status.rabbitmq, ...status.smtp, ...status.monitoring].every((m) => m.pid) ? 0 : 3;
    }
    case "health": {
      if (!existsSync(outputsFile(p))) {
        console.error(`local stack "${p.name}" is not started (no ${outputsFile(p)}): run make dev`);
        return 1;
      }
      const outputs = parseStackOutputs(JSON.parse(readFileSync(outputsFile(p), "utf8")), outputsFile(p));
      const m = monitoringOptions(p);
      const a = appsOptions(p);
      // Whether or not `make dev` ever started them (their directory may not exist yet).
      const apps = appsStatus(a);
      const running = (name: string) => apps.some((x) => x.name === name && x.pid);
      const rows = await healthTable(outputs, { prometheus: m.prometheusPort, alertmanager: m.alertmanagerPort, ...(running("service") ? { service: a.servicePort } : {}), ...(running("worker") ? { workerMetrics: a.workerMetricsPort } : {}) });
      for (const app of apps) if (!app.pid) rows.push({ component: app.name, status: "fail", detail: "not running (make dev starts it)" });
      console.log(formatHealth(rows));
      return rows.some((r) => r.status === "fail") ? 1 : 0;
    }
    case "logs": {
      if (!existsSync(p.dir)) {
        console.error(`local stack "${p.name}" has never been started (no ${p.dir}): run make dev`);
        return 1;
      }
      const n = rest.indexOf("--lines");
      const controller = new AbortController();
      process.once("SIGINT", () => controller.abort());
      process.once("SIGTERM", () => controller.abort());
      await followLogs(p.dir, { lines: n >= 0 ? Number(rest[n + 1]) : 10, signal: controller.signal });
      return 0;
    }
    case "outputs": {
      if (!existsSync(outputsFile(p))) {
        console.error(`no outputs yet: start the local stack first (make dev)`);
        return 1;
      }
      process.stdout.write(readFileSync(outputsFile(p), "utf8"));
      return 0;
    }
    default:
      console.error("usage: tsx scripts/local-stack.ts <start|apps|stop|status|health|logs|clean|outputs> [--profile dev|test] [--lines N]");
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`local-stack: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
