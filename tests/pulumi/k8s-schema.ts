/**
 * Validates the Kubernetes objects a program declares the way the API server would, since no cluster
 * runs here: types, required fields and enums from the Kubernetes OpenAPI schema (kubernetes-models'
 * validators), and unknown fields, which the server refuses under strict field validation, from the
 * OpenAPI models' attribute lists (@kubernetes/client-node's generated models). Mocks accept both
 * kinds of mistake silently.
 */
import { validateCustomResource } from "./crd-schema";
import type { RecordedResource } from "./harness";

interface Attribute {
  baseName: string;
  type: string;
}
type Models = Record<string, { getAttributeTypeMap?: () => Attribute[] }>;

let models: Models | undefined;
async function loadModels(): Promise<Models> {
  // The package's index pulls in an HTTP client that needs a newer Node; the models alone are enough.
  models ??= (await import("@kubernetes/client-node/dist/gen/models/all.js" as string)) as Models;
  return models;
}

/** `kubernetes:apps/v1:StatefulSet` → { apiVersion: "apps/v1", kind: "StatefulSet" } (`core/v1` is `v1`). */
export function apiOf(type: string): { apiVersion: string; kind: string } {
  const m = /^kubernetes:([^:]+):(\w+)$/.exec(type);
  if (!m) throw new Error(`not a Kubernetes resource type: ${type}`);
  return { apiVersion: m[1]!.replace(/^core\//, ""), kind: m[2]! };
}

/** The client-node model of a kind: V1StatefulSet, V1Job, V1PodDisruptionBudget… */
function modelName(apiVersion: string, kind: string): string {
  const version = apiVersion.split("/").pop()!;
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
}

/** Fields the API server would refuse as unknown, as `path: unknown field "x"`. */
function unknownFields(value: unknown, type: string, path: string, m: Models, out: string[]): void {
  if (value === null || value === undefined) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, array[1]!, `${path}[${i}]`, m, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value === "object") for (const [k, v] of Object.entries(value as object)) unknownFields(v, map[1]!, `${path}.${k}`, m, out);
    return;
  }
  const attributes = m[type]?.getAttributeTypeMap?.();
  if (!attributes || typeof value !== "object" || Array.isArray(value)) return; // a primitive, IntOrString, a free-form object
  for (const [key, v] of Object.entries(value as object)) {
    if (v === undefined) continue;
    const a = attributes.find((x) => x.baseName === key);
    if (!a) out.push(`${path ? `${path}.` : ""}${key}: unknown field "${key}"`);
    else unknownFields(v, a.type, `${path ? `${path}.` : ""}${key}`, m, out);
  }
}

/** The problems the API server would report for one object (none: []). */
export async function validateK8sObject(apiVersion: string, kind: string, object: Record<string, unknown>): Promise<string[]> {
  const problems: string[] = [];
  const plain = JSON.parse(JSON.stringify({ apiVersion, kind, ...object })) as Record<string, unknown>;
  const group = apiVersion.includes("/") ? apiVersion : `v1`;
  let Model: (new (o: unknown) => { validate(): void }) | undefined;
  try {
    const mod = (await import(`kubernetes-models/${group}/${kind}`)) as Record<string, new (o: unknown) => { validate(): void }>;
    Model = mod[kind];
  } catch {
    problems.push(`${apiVersion} ${kind}: not a kind of the Kubernetes API`);
  }
  if (Model) {
    try {
      new Model(plain).validate();
    } catch (e) {
      problems.push(...String((e as Error).message).split(/,\s*(?=data)/).map((s) => s.replace(/^data\/?/, "").replace(/\//g, ".")));
    }
  }
  const m = await loadModels();
  const name = modelName(apiVersion, kind);
  if (!m[name]) problems.push(`${apiVersion} ${kind}: no OpenAPI model ${name}`);
  else unknownFields(plain, name, "", m, problems);
  return problems;
}

/** A custom resource's group has a dot and is not one of Kubernetes' own (`*.k8s.io`). */
export const isCustomResource = (apiVersion: string): boolean => {
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0]! : "";
  return group.includes(".") && !group.endsWith(".k8s.io");
};

/** Provider-side components (a Helm release, a YAML file): what they render is not in the program. */
const NOT_AN_OBJECT = /^kubernetes:(helm\.sh|yaml)\//;

/**
 * Every Kubernetes resource of a mock run with the problems the API server would find in it: built-in
 * kinds against the Kubernetes OpenAPI schema, custom resources against their operator's CRD.
 */
export async function validateRecorded(resources: readonly RecordedResource[]): Promise<{ resource: string; problems: string[] }[]> {
  const out: { resource: string; problems: string[] }[] = [];
  for (const r of resources.filter((x) => x.type.startsWith("kubernetes:") && !NOT_AN_OBJECT.test(x.type))) {
    const { apiVersion, kind } = apiOf(r.type);
    const problems = isCustomResource(apiVersion) ? validateCustomResource(apiVersion, kind, r.inputs) : await validateK8sObject(apiVersion, kind, r.inputs);
    out.push({ resource: `${kind} ${r.name}`, problems });
  }
  return out;
}
