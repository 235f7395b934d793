/**
 * What the upstream facts are checked against: the declared resources of the stacks (snapshots of the
 * programs under the mock harness, tests/upstream/snapshot.ts), the shell scripts and the workflow, with
 * the small lookups the rules share (containers by image, pods of every Kubernetes kind, dependency
 * closure). A rule's negative case is a World changed to what the fact forbids.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "yaml";

export const ROOT = path.resolve(__dirname, "../..");

export interface Declared {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, any>;
  dependencies: string[];
}

export interface Snapshot {
  readonly stack: string;
  readonly exported: { readonly postgres: any; readonly grafana?: string };
  readonly resources: Declared[];
}

export interface World {
  /** The dev stack with logging on (the Docker ELK path, and what e2e-docker deploys). */
  readonly dev: Snapshot;
  readonly kind: Snapshot;
  readonly prod: Snapshot;
  /** scripts/**.sh by path (relative to the repository). */
  readonly scripts: Record<string, string>;
  readonly workflow: any;
}

export const DOCKER_CONTAINER = "docker:index/container:Container";

/** Runs each stack's program in a process of its own and reads what it declared. */
export function loadWorld(): World {
  const dir = mkdtempSync(path.join(tmpdir(), "shopfds-upstream-"));
  try {
    const snap = (stack: string, override?: object): Snapshot => {
      const out = path.join(dir, `${stack}.json`);
      execFileSync(process.execPath, ["--import", "tsx", path.join(__dirname, "snapshot.ts"), stack, out, ...(override ? [JSON.stringify(override)] : [])], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
      return JSON.parse(readFileSync(out, "utf8")) as Snapshot;
    };
    const scriptsDir = path.join(ROOT, "scripts");
    const scripts: Record<string, string> = {};
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith(".sh")) scripts[path.relative(ROOT, p)] = readFileSync(p, "utf8");
      }
    };
    walk(scriptsDir);
    return {
      dev: snap("dev", { "shopfds:logging": { enabled: true } }),
      kind: snap("kind"),
      prod: snap("prod"),
      scripts,
      workflow: parse(readFileSync(path.join(ROOT, ".github/workflows/ci.yml"), "utf8")),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A deep copy, for a negative case to change. */
export const copy = <T>(v: T): T => structuredClone(v);

/** Docker containers whose image is `ref` (name, without tag) in a snapshot. */
export function dockerContainers(s: Snapshot, image: string): Declared[] {
  return s.resources.filter((r) => r.type === DOCKER_CONTAINER && imageName(String(r.inputs.image).replace(/^sha256:mock-/, "")) === image);
}

/** `registry/name` of `registry/name:tag`. */
export const imageName = (ref: string) => ref.replace(/:[^/:]+$/, "");
export const imageTag = (ref: string) => (/:([^/:]+)$/.exec(ref)?.[1] ?? "");

export const envOf = (c: Declared): Record<string, string> => Object.fromEntries((c.inputs.envs ?? []).map((e: string) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
export const uploadsOf = (c: Declared): { file: string; content: string; permissions: string }[] => c.inputs.uploads ?? [];

/** Every resource `r` depends on, directly or through others (by URN's type::name). */
export function dependencyClosure(s: Snapshot, r: Declared): Set<string> {
  const byKey = new Map(s.resources.map((x) => [`${x.type}::${x.name}`, x]));
  const seen = new Set<string>();
  const visit = (x: Declared) => {
    for (const urn of x.dependencies) {
      const key = urn.slice(urn.lastIndexOf("$") + 1);
      if (seen.has(key)) continue;
      seen.add(key);
      const next = byKey.get(key);
      if (next) visit(next);
    }
  };
  visit(r);
  return seen;
}

export const key = (r: Declared) => `${r.type}::${r.name}`;

export function byType(s: Snapshot, type: string): Declared[] {
  return s.resources.filter((r) => r.type === type);
}

export function named(s: Snapshot, type: string, name: string): Declared {
  const r = s.resources.find((x) => x.type === type && x.name === name);
  if (!r) throw new Error(`${s.stack}: no ${type} named ${name}`);
  return r;
}

export interface PodOf {
  readonly owner: string;
  /** How many pods of it run (replicas, the HPA's maximum, one per node for a DaemonSet). */
  readonly count: number;
  readonly containers: any[];
}

/** Memory of a quantity in MiB (Ki, Mi, Gi, plain bytes). */
export function mib(quantity: string | undefined): number {
  if (quantity === undefined) return NaN;
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G)?$/.exec(String(quantity));
  if (!m) return NaN;
  const n = Number(m[1]);
  const unit = { Ki: 1 / 1024, Mi: 1, Gi: 1024, Ti: 1024 * 1024, k: 1000 / 1048576, M: 1e6 / 1048576, G: 1e9 / 1048576 }[m[2] ?? ""] ?? 1 / 1048576;
  return n * unit;
}
