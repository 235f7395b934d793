/**
 * Layer 3: alerting end to end with real Prometheus, Alertmanager and node-exporter (Debian's), started
 * by the local stack's monitoring code from the shipped renderers, on ports of this file's own. A test
 * exporter reports a CPU at 95 %: the critical alert reaches the Slack-compatible sink within 30 s of the
 * condition (SC-007, measured from the moment Prometheus itself first sees the alert's expression
 * true) and the SMTP sink, and inhibition keeps the matching warning quiet. Everything runs with the
 * shipped settings: scrape and evaluation intervals, rules with their `for`, Alertmanager's grouping.
 * Every process started is stopped by its PID.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { alertRuleGroups } from "../../components/monitoring/render";
import { loadStackOutputs } from "../../runtime/outputs";
import { mailDir } from "../../scripts/local-stack/smtp";
import { type LocalMonitoringOptions, startMonitoring, stopMonitoring, webhookDir } from "../../scripts/local-stack/monitoring";
import { profile, smtpOptions } from "../../scripts/local-stack/stack";
import { until } from "../support/databases";
import { testPorts } from "../support/ports";

const dir = mkdtempSync(path.join(tmpdir(), "shopfds-alerting-"));
let exporter: Server;
let target = "";
let options: LocalMonitoringOptions;
let startedAt = 0;

before(async () => {
  const outputs = await loadStackOutputs();
  // A host whose CPU is 95 % busy: the idle counter grows at 5 % of real time.
  const t0 = Date.now();
  exporter = createServer((_req, res) => {
    const idle = ((Date.now() - t0) / 1000) * 0.05;
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(`# TYPE node_cpu_seconds_total counter\nnode_cpu_seconds_total{cpu="0",mode="idle"} ${idle}\nnode_cpu_seconds_total{cpu="0",mode="user"} ${((Date.now() - t0) / 1000) * 0.95}\n`);
  });
  await new Promise<void>((r) => exporter.listen(0, "127.0.0.1", () => r()));
  target = `127.0.0.1:${(exporter.address() as { port: number }).port}`;
  options = {
    dir,
    prometheusPort: testPorts("alerting"),
    alertmanagerPort: testPorts("alerting") + 3,
    nodeExporterPort: testPorts("alerting") + 1,
    webhookPort: testPorts("alerting") + 4,
    traceSinkPort: testPorts("alerting") + 5,
    smtpPort: outputs.smtp!.port,
    jobs: [{ name: "busy-host", targets: [target] }],
  };
  startedAt = performance.now();
  await startMonitoring(options);
});

after(async () => {
  await stopMonitoring(options);
  exporter?.close();
  rmSync(dir, { recursive: true, force: true });
});

const slackMessages = () =>
  existsSync(webhookDir(options))
    ? readdirSync(webhookDir(options))
        .filter((f) => f.endsWith(".json") && !f.startsWith("."))
        .map((f) => JSON.parse(JSON.parse(readFileSync(path.join(webhookDir(options), f), "utf8")).body) as { channel: string; attachments: { title: string; text: string }[] })
    : [];

describe("alerting end to end", () => {
  it("US4-3 (SC-007, FR-027): a CPU above 90 % reaches Slack (critical) within 30 s, and e-mail, with the warning inhibited", async () => {
    const mine = () => slackMessages().filter((m) => m.attachments?.some((a) => a.text.includes(target)));
    // The condition: Prometheus's own evaluation of the critical expression over the scraped samples.
    const expr = alertRuleGroups().flatMap((g) => g.rules).find((r) => r.alert === "HostHighCpu" && r.labels.severity === "critical")!.expr;
    const api = `http://127.0.0.1:${options.prometheusPort}/api/v1/query?query=${encodeURIComponent(expr)}`;
    let conditionAt = 0;
    await until("a Slack message about the busy host", 90_000, async () => {
      if (!conditionAt) {
        const body = (await (await fetch(api).catch(() => undefined))?.json().catch(() => undefined)) as { data?: { result?: { metric: { instance?: string } }[] } } | undefined;
        if (body?.data?.result?.some((r) => r.metric.instance === target)) conditionAt = performance.now();
      }
      return mine().length > 0;
    });
    const seconds = (performance.now() - Math.max(conditionAt || startedAt, startedAt)) / 1000;
    console.log(`    Slack-format message at the sink ${seconds.toFixed(1)} s after the condition held (${((performance.now() - startedAt) / 1000).toFixed(1)} s after Prometheus and Alertmanager were started; shipped timing)`);
    assert.ok(conditionAt > 0, "the condition was seen before the message");
    assert.ok(seconds < 30, `${seconds} s (SC-007)`);
    const [message] = mine();
    assert.equal(message!.channel, "#shopfds-alerts");
    assert.equal(message!.attachments[0]!.title, "[FIRING] HostHighCpu (critical)");
    assert.match(message!.attachments[0]!.text, new RegExp(`CPU above 90 % on ${target.replace(/\./g, "\\.")}\\nCPU use has been (9\\d|100) % over the last minute\\.\\nRunbook: https://`));
    const sink = mailDir(smtpOptions(profile("test")));
    await until("the critical alert by e-mail", 15_000, async () => readdirSync(sink).some((f) => !f.startsWith(".") && readFileSync(path.join(sink, f), "utf8").includes("HostHighCpu")));
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(mine().filter((m) => m.attachments[0]!.title.includes("(warning)")), [], "the warning is inhibited while the critical fires");
  });
});
