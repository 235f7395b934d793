/**
 * Validates custom resources the way the API server would, against the operators' own CRDs
 * (tests/fixtures/crds, gzipped copies of the files each project publishes; README there). A CRD's
 * `openAPIV3Schema` is a structural schema with Kubernetes' own extensions, translated here into plain
 * JSON Schema for Ajv:
 * - `x-kubernetes-int-or-string` → integer or string;
 * - `nullable: true` → the type also admits null;
 * - an object with `properties` and neither `additionalProperties` nor
 *   `x-kubernetes-preserve-unknown-fields` refuses other fields (the server prunes them, or with strict
 *   field validation — kubectl's and Pulumi's default since 1.27 — refuses them: either way the setting
 *   never takes effect, so here it is an error).
 * CEL rules (`x-kubernetes-validations`) are not evaluated: no CEL engine runs here.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from "ajv";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { parseAllDocuments } from "yaml";

export const CRD_DIR = path.resolve(__dirname, "../fixtures/crds");

type Schema = Record<string, any>;

/** Kubernetes' structural schema → JSON Schema (a copy; the CRD is left as it is). */
export function toJsonSchema(node: Schema): Schema {
  if (node === null || typeof node !== "object" || Array.isArray(node)) return node;
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith("x-kubernetes-") || key === "nullable") continue;
    if (key === "properties") out.properties = Object.fromEntries(Object.entries(value as Schema).map(([k, v]) => [k, toJsonSchema(v as Schema)]));
    else if (key === "items" || key === "additionalProperties" || key === "not") out[key] = typeof value === "object" ? toJsonSchema(value as Schema) : value;
    else if (key === "allOf" || key === "anyOf" || key === "oneOf") out[key] = (value as Schema[]).map(toJsonSchema);
    else out[key] = value;
  }
  if (node["x-kubernetes-int-or-string"]) {
    delete out.type;
    out.anyOf = [...(out.anyOf ?? []), { type: "integer" }, { type: "string" }];
  }
  if (node.nullable && typeof out.type === "string") out.type = [out.type, "null"];
  if (node.type === "object" && node.properties && node.additionalProperties === undefined && !node["x-kubernetes-preserve-unknown-fields"]) {
    out.additionalProperties = false;
  }
  return out;
}

interface Crd {
  readonly file: string;
  readonly group: string;
  readonly kind: string;
  /** Served versions' schemas, compiled on first use (compiling all of them takes seconds). */
  readonly versions: ReadonlyMap<string, () => ValidateFunction>;
}

let crds: Map<string, Crd> | undefined;
/**
 * CRD patterns are Go (RE2) regular expressions; the one construct JavaScript lacks is an inline flag,
 * `(?i)`, which the CRDs here use for whole-pattern case-insensitivity.
 */
function goRegExp(pattern: string, flags: string): RegExp {
  return pattern.includes("(?i)") ? new RegExp(pattern.replaceAll("(?i)", ""), `${flags}i`) : new RegExp(pattern, flags);
}
const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false, code: { regExp: goRegExp as never } });

/** Every vendored CRD, by `group/version Kind`. */
export function loadCrds(dir = CRD_DIR): Map<string, Crd> {
  if (crds) return crds;
  crds = new Map();
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml.gz"))) {
    for (const doc of parseAllDocuments(gunzipSync(readFileSync(path.join(dir, file))).toString("utf8"))) {
      const crd = doc.toJS() as Schema;
      if (crd?.kind !== "CustomResourceDefinition") continue;
      const versions = new Map<string, () => ValidateFunction>();
      const entry: Crd = { file, group: crd.spec.group, kind: crd.spec.names.kind, versions };
      for (const v of crd.spec.versions as Schema[]) {
        if (!v.served) continue;
        const schema = toJsonSchema(v.schema.openAPIV3Schema);
        // metadata is validated by the server as ObjectMeta, not by the CRD.
        if (schema.properties) schema.properties.metadata = { type: "object" };
        let compiled: ValidateFunction | undefined;
        versions.set(v.name, () => (compiled ??= ajv.compile(schema)));
        crds.set(`${crd.spec.group}/${v.name} ${entry.kind}`, entry);
      }
    }
  }
  return crds;
}

/** `/spec/backup/retentionPolicy` → `spec.backup.retentionPolicy`, as the server names a field. */
const fieldPath = (pointer: string) => pointer.replace(/^\//, "").replace(/\/(\d+)(?=\/|$)/g, "[$1]").replace(/\//g, ".");

function describe(e: ErrorObject): string {
  const where = fieldPath(e.instancePath);
  const at = (field: string) => (where ? `${where}.${field}` : field);
  switch (e.keyword) {
    case "additionalProperties":
      return `${at(String(e.params.additionalProperty))}: unknown field "${String(e.params.additionalProperty)}"`;
    case "required":
      return `${at(String(e.params.missingProperty))}: Required value`;
    case "type":
      return `${where || "(root)"}: must be ${Array.isArray(e.params.type) ? e.params.type.join(" or ") : String(e.params.type)}`;
    case "enum":
      return `${where}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    default:
      return `${where || "(root)"}: ${e.message ?? e.keyword}`;
  }
}

/**
 * What the API server would report for a custom resource ([] when it is valid); a kind no vendored CRD
 * defines is itself a problem (an operator the program forgot, or a typo in the apiVersion).
 */
export function validateCustomResource(apiVersion: string, kind: string, object: Record<string, unknown>): string[] {
  const crd = loadCrds().get(`${apiVersion} ${kind}`);
  if (!crd) return [`${apiVersion} ${kind}: no CRD for this kind in tests/fixtures/crds`];
  const validate = crd.versions.get(apiVersion.split("/")[1]!)!();
  const plain = JSON.parse(JSON.stringify({ apiVersion, kind, ...object })) as Record<string, unknown>;
  if (validate(plain)) return [];
  // anyOf branches report each failed alternative; keep one line per distinct problem.
  return [...new Set((validate.errors ?? []).filter((e) => e.keyword !== "anyOf").map(describe))].sort();
}
