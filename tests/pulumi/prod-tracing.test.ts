/**
 * The prod program with tracing configured (`shopfds:tracing` and its way out, `shopfds:egress.otlp`):
 * the service, the workers and the scheduler get the OTEL_* environment the runtime's
 * tracing/register reads, each under its own service name; Flower does not trace; the egress policy
 * lets the traced pods reach the collector. The stack files configure no collector: tracing off there
 * (prod-stack.test.ts finds none of these variables).
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { MockHarness, stackSettings, TEST_SECRETS } from "./harness";

const h = new MockHarness();
const DEPLOY = "kubernetes:apps/v1:Deployment";
const STS = "kubernetes:apps/v1:StatefulSet";
const envOf = (name: string, type = DEPLOY): Record<string, string> => Object.fromEntries(h.named(type, name).inputs.spec.template.spec.containers[0].env.map((e: { name: string; value: string }) => [e.name, e.value]));
const OTEL = (env: Record<string, string>) => Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith("OTEL_")));

before(async () => {
  const settings = stackSettings("prod");
  await h.runProgram(
    "prod",
    {
      ...settings,
      "shopfds:tracing": { otlpEndpoint: "http://otel-collector.observability:4318", sampleRatio: 0.2 },
      "shopfds:egress": { ...(settings["shopfds:egress"] as object), otlp: { peer: { namespace: "observability" }, port: 4318 } },
    },
    TEST_SECRETS.prod,
  );
});

describe("prod stack with tracing", () => {
  it("the service, the workers and the scheduler export to the collector, each under its own name; Flower does not", () => {
    const expected = (name: string) => ({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel-collector.observability:4318", OTEL_SERVICE_NAME: name, OTEL_TRACES_SAMPLER_ARG: "0.2" });
    assert.deepEqual(OTEL(envOf("shopfds-prod-service")), expected("shopfds-service"));
    assert.deepEqual(OTEL(envOf("shopfds-prod-jobs-worker")), expected("shopfds-worker"));
    assert.deepEqual(OTEL(envOf("shopfds-prod-jobs-scheduler", STS)), expected("shopfds-scheduler"));
    assert.deepEqual(OTEL(envOf("shopfds-prod-jobs-flower")), {});
  });

  it("an egress policy lets the traced pods reach the collector's namespace on 4318", () => {
    const policies = h.resources.filter((r) => r.type === "kubernetes:networking.k8s.io/v1:NetworkPolicy" && r.name.endsWith("otlp"));
    assert.equal(policies.length, 1, h.resources.filter((r) => r.type.includes("NetworkPolicy")).map((r) => r.name).join(", "));
    const spec = policies[0]!.inputs.spec;
    assert.deepEqual(spec.egress[0].ports, [{ protocol: "TCP", port: 4318 }]);
    assert.deepEqual(spec.egress[0].to, [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "observability" } } }]);
  });
});
