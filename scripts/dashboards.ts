/**
 * `make dashboards`: the Grafana dashboards (components/monitoring/dashboards.ts) drawn from a
 * Prometheus, one PNG per panel and an index.html per run, so a developer without Docker (no Grafana
 * here) sees the same panels. Each panel's queries are asked over the last --minutes (query_range, one
 * point per scrape interval), drawn as lines with Vega-Lite (SVG, no browser), rasterised with resvg.
 *
 *   node --import tsx scripts/dashboards.ts [--prometheus http://127.0.0.1:15490] [--out .dashboards] [--minutes 30]
 *
 * Without --prometheus it reads the running `make dev` environment's (the local stack's dev profile).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Resvg } from "@resvg/resvg-js";
import type { TopLevelSpec } from "vega-lite";
import { DASHBOARDS, type PanelSpec } from "../components/monitoring/dashboards";
import { ALERT_TIMING } from "../components/monitoring/render";

interface Series {
  readonly metric: Record<string, string>;
  readonly values: [number, string][];
}

/** Grafana's `{{label}}` legend templates, filled from a series' labels. */
export const legendOf = (template: string, metric: Record<string, string>) => template.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k: string) => metric[k] ?? "");

/** One query over the window, as Prometheus's range API answers it (a bad query names itself). */
export async function queryRange(prometheus: string, expr: string, start: number, end: number, stepSeconds: number): Promise<Series[]> {
  const url = `${prometheus.replace(/\/$/, "")}/api/v1/query_range?${new URLSearchParams({ query: expr, start: String(start), end: String(end), step: String(stepSeconds) })}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  const body = (await res.json()) as { status: string; error?: string; data?: { result: Series[] } };
  if (body.status !== "success") throw new Error(`Prometheus refused ${JSON.stringify(expr)}: ${body.error ?? res.status}`);
  return body.data!.result;
}

/** A panel as a PNG: every series of every target, one line each, its legend as Grafana would name it. */
export async function renderPanel(prometheus: string, panel: PanelSpec, window: { start: number; end: number; stepSeconds: number }): Promise<{ png: Buffer; series: number }> {
  const rows: { t: Date; v: number; series: string }[] = [];
  let series = 0;
  for (const target of panel.targets) {
    for (const s of await queryRange(prometheus, target.expr, window.start, window.end, window.stepSeconds)) {
      series++;
      const name = legendOf(target.legend, s.metric) || target.expr;
      for (const [t, v] of s.values) if (Number.isFinite(Number(v))) rows.push({ t: new Date(t * 1000), v: Number(v), series: name });
    }
  }
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: panel.title, subtitle: rows.length === 0 ? "no data" : `unit: ${panel.unit}` },
    width: 640,
    height: 260,
    background: "white",
    data: { values: rows },
    mark: { type: "line", point: rows.length < 40 },
    encoding: {
      x: { field: "t", type: "temporal", title: null, axis: { format: "%H:%M:%S", labelOverlap: true } },
      // A flat zero line keeps a 0–1 axis (Vega would otherwise draw one tick, "0.000000").
      y: { field: "v", type: "quantitative", title: panel.unit, scale: rows.some((r) => r.v !== 0) ? { zero: true } : { domain: [0, 1] } },
      color: { field: "series", type: "nominal", legend: { orient: "bottom", columns: 2, labelLimit: 480 } },
    },
  };
  // ES modules with top-level await (vega-canvas): loaded the ESM way, once.
  const [vega, { compile }] = await Promise.all([import("vega"), import("vega-lite")]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return { png: new Resvg(svg, { fitTo: { mode: "zoom", value: 1.5 }, font: { loadSystemFonts: true } }).render().asPng(), series };
}

/** Every dashboard's panels under `out/<uid>/NN-<title>.png`, with an index.html; returns what it wrote. */
export async function renderDashboards(o: { prometheus: string; out: string; minutes: number; now?: number }): Promise<{ file: string; series: number }[]> {
  const end = Math.floor((o.now ?? Date.now()) / 1000);
  const window = { start: end - o.minutes * 60, end, stepSeconds: ALERT_TIMING.scrapeIntervalSeconds };
  const written: { file: string; series: number }[] = [];
  const html: string[] = [];
  for (const d of DASHBOARDS) {
    mkdirSync(path.join(o.out, d.uid), { recursive: true });
    html.push(`<h2>${d.title}</h2>`);
    for (const [i, panel] of d.panels.entries()) {
      const { png, series } = await renderPanel(o.prometheus, panel, window);
      const file = path.join(o.out, d.uid, `${String(i + 1).padStart(2, "0")}-${panel.title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "")}.png`);
      writeFileSync(file, png);
      written.push({ file, series });
      html.push(`<img src="${path.relative(o.out, file)}" alt="${panel.title}" width="640">`);
      console.log(`${series === 0 ? "no data " : ""}${path.relative(process.cwd(), file)} (${series} series)`);
    }
  }
  writeFileSync(path.join(o.out, "index.html"), `<!doctype html><meta charset="utf-8"><title>ShopFDS dashboards</title><body style="font-family:sans-serif">${html.join("\n")}</body>\n`);
  return written;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(__filename)) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  void (async () => {
    let prometheus = arg("prometheus");
    if (!prometheus) {
      const { monitoringOptions, profile } = await import("./local-stack/stack.js");
      prometheus = `http://127.0.0.1:${monitoringOptions(profile("dev")).prometheusPort}`;
    }
    const minutes = Number(arg("minutes") ?? "30");
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 24 * 60) throw new Error(`--minutes: must be a whole number of minutes from 1 to 1440 (got ${arg("minutes")})`);
    const out = path.resolve(arg("out") ?? ".dashboards");
    try {
      await fetch(`${prometheus}/-/ready`, { signal: AbortSignal.timeout(3000) });
    } catch {
      throw new Error(`no Prometheus answers at ${prometheus}: start the environment first (make dev), or pass --prometheus URL`);
    }
    const written = await renderDashboards({ prometheus, out, minutes });
    const empty = written.filter((w) => w.series === 0).length;
    console.log(`${written.length} panels drawn from ${prometheus} (last ${minutes} min) into ${path.relative(process.cwd(), out) || "."}/index.html${empty ? `; ${empty} had no data yet (put some load on the service)` : ""}`);
  })().catch((e: Error) => {
    console.error(`dashboards: ${e.message}`);
    process.exitCode = 1;
  });
}
