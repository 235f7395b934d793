/**
 * End to end: every Grafana panel (components/monitoring/dashboards.ts) answers with data from a real
 * Prometheus, configured by the shipped renderers (scrape every 10 s), scraping the running service and
 * worker processes (what `make dev` starts) and the test stack's RabbitMQ while the service takes load:
 * orders, blocked orders, FDS evaluations, reads, reports. A panel whose query matches nothing fails.
 * Then `make dashboards`' renderer draws every panel from that Prometheus to PNG. Every process started
 * here is stopped by its PID, pass or fail.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { DASHBOARDS, type PanelSpec } from "../../components/monitoring/dashboards";
import { loadStackOutputs, type StackOutputs } from "../../runtime/outputs";
import { renderDashboards } from "../../scripts/dashboards";
import { adminPasswordFile, DEV_ADMIN_EMAIL, type LocalAppsOptions, serviceUrl, startApps, stopApps } from "../../scripts/local-stack/apps";
import { serviceTargetsFile, startMonitoring, stopMonitoring, type LocalMonitoringOptions } from "../../scripts/local-stack/monitoring";
import { profile, rabbitOptions } from "../../scripts/local-stack/stack";
import { createMigratedDatabase, until } from "../support/databases";
import { testPorts } from "../support/ports";

const dir = mkdtempSync(path.join(tmpdir(), "shopfds-dashboards-"));
const base = testPorts("dashboards");
let monitoring: LocalMonitoringOptions;
let apps: LocalAppsOptions;
let prometheus = "";
let drop: () => Promise<void> = async () => undefined;
let load: Promise<void> | undefined;
let loading = true;

async function instant(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const body = (await (await fetch(`${prometheus}/api/v1/query?${new URLSearchParams({ query: expr })}`)).json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
  return body.data.result;
}

/** The panel's targets that answer with no series holding a number (NaN and ±Inf are no data). */
async function emptyTargets(panel: PanelSpec): Promise<string[]> {
  const empty: string[] = [];
  for (const t of panel.targets) if (!(await instant(t.expr)).some((s) => Number.isFinite(Number(s.value[1])))) empty.push(t.expr);
  return empty;
}

const post = (route: string, body: unknown, token?: string) =>
  fetch(`${serviceUrl(apps)}${route}`, { method: "POST", headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });

before(async () => {
  const outputs0 = await loadStackOutputs();
  const created = await createMigratedDatabase(outputs0, `shopfds_dashboards_${process.pid}`);
  drop = created.drop;
  const outputs: StackOutputs = { ...outputs0, postgres: created.postgres };
  const c = new pg.Client({ ...outputs.postgres.primary, database: outputs.postgres.database, user: outputs.postgres.user, password: outputs.postgres.password });
  await c.connect();
  await c.query("INSERT INTO users (email, password_hash, name) VALUES ('dash-buyer@test.com', 'x', 'Buyer'); INSERT INTO products (sku, name, category, price, stock) VALUES ('dash-1', 'Lamp', 'home', 30000, 1000000)");
  await c.end();

  monitoring = {
    dir: path.join(dir, "monitoring"),
    prometheusPort: base,
    alertmanagerPort: base + 1,
    nodeExporterPort: base + 2,
    webhookPort: base + 3,
    traceSinkPort: base + 4,
    smtpPort: outputs.smtp!.port,
    jobs: [{ name: "rabbitmq", targets: [`127.0.0.1:${rabbitOptions(profile("test")).firstPort + 2}`] }],
  };
  await startMonitoring(monitoring);
  prometheus = `http://127.0.0.1:${monitoring.prometheusPort}`;
  apps = { dir: path.join(dir, "apps"), outputsFile: path.join(dir, "outputs.json"), servicePort: base + 5, workerMetricsPort: base + 6, targetsFile: serviceTargetsFile(monitoring) };
  writeFileSync(apps.outputsFile, JSON.stringify(outputs), { mode: 0o600 });
  await startApps(apps, outputs);

  // An admin blacklists an address, then load runs until the tests end: placed and blocked orders,
  // evaluations, reads, a report now and then (so rates and quantiles have samples in every window).
  const login = (await (await post("/login", { email: DEV_ADMIN_EMAIL, password: readFileSync(adminPasswordFile(apps), "utf8").trim() })).json()) as { token: string };
  assert.equal((await post("/v1/admin/blacklist", { type: "ip", value: "203.0.113.9", reason: "dashboards test", ttlSeconds: 3600 }, login.token)).status, 201);
  load = (async () => {
    for (let i = 0; loading; i++) {
      const order = (ip: string) => post("/orders", { userId: 1, items: [{ productId: 1, quantity: 1 }], ip, email: "dash-buyer@test.com" });
      const placed = (await (await order(`192.0.2.${(i % 200) + 1}`)).json()) as { orderId?: number };
      await order("203.0.113.9");
      await post("/fds/evaluate", { amount: 1000 + i, ip: "198.51.100.7", email: "someone@test.com" });
      if (placed.orderId) await fetch(`${serviceUrl(apps)}/orders/${placed.orderId}`);
      if (i % 20 === 0) await post("/reports", { kind: "fds_daily", days: 1 }, login.token);
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  // Three scrapes of both processes under load: every rate has two samples in its window.
  const started = Date.now() / 1000;
  await until("Prometheus has scraped the service and the worker three times under load", 90_000, async () => {
    const samples = await instant(`count_over_time(up{job="shopfds-services"}[5m])`);
    return samples.length === 2 && samples.every((s) => Number(s.value[1]) >= 3) && Date.now() / 1000 - started > 25;
  });
});

after(async () => {
  loading = false;
  await load?.catch(() => undefined);
  await stopApps(apps).catch(() => undefined);
  await stopMonitoring(monitoring).catch(() => undefined);
  await drop();
  rmSync(dir, { recursive: true, force: true });
});

describe("dashboards on the running service", () => {
  for (const d of DASHBOARDS)
    it(`${d.title}: every panel's queries return series`, async () => {
      const failing: string[] = [];
      for (const p of d.panels) for (const e of await emptyTargets(p)) failing.push(`${p.title}: ${e}`);
      assert.deepEqual(failing, []);
    });

  it("the check can fail: a panel whose query matches nothing is named", async () => {
    assert.deepEqual(await emptyTargets({ title: "typo", unit: "short", targets: [{ expr: "sum(rate(shopfds_http_request_total[5m]))", legend: "" }] }), ["sum(rate(shopfds_http_request_total[5m]))"]);
  });

  it("make dashboards draws every panel from that Prometheus to a PNG with its series", async () => {
    const out = path.join(dir, "png");
    const written = await renderDashboards({ prometheus, out, minutes: 5 });
    assert.equal(written.length, DASHBOARDS.reduce((n, d) => n + d.panels.length, 0));
    for (const w of written) {
      const png = readFileSync(w.file);
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${w.file} is a PNG`);
      assert.ok(png.readUInt32BE(16) >= 600 && png.readUInt32BE(20) >= 300, `${w.file}: ${png.readUInt32BE(16)}×${png.readUInt32BE(20)}`);
      assert.ok(w.series > 0, `${w.file} drew no series`);
    }
    assert.match(readFileSync(path.join(out, "index.html"), "utf8"), /<img src="shopfds-service\/01-requests-per-route\.png"/);
  });
});
