/**
 * What the program pins, by the names facts.yaml uses in `pin`: image repositories (their tags, read
 * from every image the stacks declare), the operators and charts (components/platform/operators.ts), the
 * Elastic Stack ECK deploys, kubectl (the workflow's kind-action input) and the e2e-kind runner.
 */
import { ELASTIC_VERSION } from "../../components/logging/kubernetes";
import { OPERATORS } from "../../components/platform/operators";
import { DOCKER_CONTAINER, imageName, imageTag, World } from "./world";

export function pinnedVersions(w: World): Map<string, string> {
  const pins = new Map<string, string>();
  const image = (ref: string) => {
    const name = imageName(ref);
    const tag = imageTag(ref);
    const had = pins.get(name);
    pins.set(name, had && had !== tag ? `${had},${tag}` : tag);
  };
  for (const r of w.dev.resources) if (r.type === DOCKER_CONTAINER) image(String(r.inputs.image).replace(/^sha256:mock-/, ""));
  for (const s of [w.kind, w.prod])
    for (const r of s.resources) {
      const spec = r.inputs.spec?.template?.spec ?? r.inputs.spec?.jobTemplate?.spec?.template?.spec;
      for (const c of spec?.containers ?? []) image(c.image);
    }
  pins.set("eck", OPERATORS.eck.appVersion);
  pins.set("eck-stack", ELASTIC_VERSION);
  pins.set("cnpg", OPERATORS.cnpg.appVersion);
  pins.set("cloudnative-pg-chart", OPERATORS.cnpg.version);
  pins.set("rabbitmq-cluster-operator", OPERATORS.rabbitmq.appVersion);
  pins.set("cert-manager", OPERATORS.certManager.appVersion.replace(/^v/, ""));
  pins.set("kube-prometheus-stack", OPERATORS.prometheus.version);
  const steps: any[] = w.workflow.jobs?.["e2e-kind"]?.steps ?? [];
  const kindAction = steps.find((s) => String(s.uses ?? "").startsWith("helm/kind-action"));
  pins.set("kubectl", String(kindAction?.with?.kubectl_version ?? "unpinned").replace(/^v/, ""));
  pins.set("runner", String(w.workflow.jobs?.["e2e-kind"]?.["runs-on"] ?? "unknown"));
  return pins;
}

/** Whether `pinned` is the version a fact was read at: the same, or inside its `a-b` range (dotted numbers). */
export function versionMatches(factVersion: string, pinned: string): boolean {
  const range = /^(\d+(?:\.\d+)*)-(\d+(?:\.\d+)*)$/.exec(factVersion);
  if (!range) return pinned.split(",").every((p) => p === factVersion);
  const num = (v: string) => v.split(".").map(Number);
  const cmp = (a: number[], b: number[]) => {
    for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
    return 0;
  };
  return /^\d+(\.\d+)*$/.test(pinned) && cmp(num(pinned), num(range[1]!)) >= 0 && cmp(num(pinned), num(range[2]!)) <= 0;
}
