/**
 * Layer 2: the prod stack's NetworkPolicies, judged by what they let through. A small evaluator applies
 * Kubernetes' rules for ingress (a pod selected by any policy admits only what some policy allows; rules
 * are ORed; a `from` entry matches by namespace and/or pod labels; ports, when listed, must match) to the
 * policies the program declares, and each flow of the design is checked both ways.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { MockHarness } from "./harness";

const h = new MockHarness();
const NS = "shopfds-prod";

before(async () => {
  await h.runProgram("prod");
});

type Labels = Record<string, string>;
interface Peer {
  readonly namespace: string;
  readonly labels: Labels;
}

const matches = (selector: { matchLabels?: Labels } | undefined, labels: Labels) => Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);

/** Whether the declared policies admit a TCP connection from `from` to `to` on `port`. */
function admits(policies: any[], from: Peer, to: Peer, port: number): boolean {
  const selecting = policies.filter((p) => p.metadata.namespace === to.namespace && p.spec.policyTypes.includes("Ingress") && matches(p.spec.podSelector, to.labels));
  if (selecting.length === 0) return true; // not isolated
  return selecting.some((p) =>
    (p.spec.ingress ?? []).some((rule: any) => {
      const portOk = !rule.ports || rule.ports.some((x: any) => x.port === port);
      const peerOk =
        !rule.from ||
        rule.from.some((f: any) => {
          const nsOk = f.namespaceSelector ? matches(f.namespaceSelector, { "kubernetes.io/metadata.name": from.namespace }) : from.namespace === to.namespace;
          const podOk = f.podSelector ? matches(f.podSelector, from.labels) : true;
          return nsOk && podOk;
        });
      return portOk && peerOk;
    }),
  );
}

const pod = (namespace: string, labels: Labels = {}): Peer => ({ namespace, labels });
const service = pod(NS, { "app.kubernetes.io/name": "shopfds-prod-service" });
const worker = pod(NS, { "app.kubernetes.io/name": "shopfds-prod-jobs-worker" });
const postgres = pod(NS, { "cnpg.io/cluster": "shopfds-prod-pg" });
const redis = pod(NS, { "app.kubernetes.io/name": "shopfds-prod-redis-node" });
const logstash = pod(NS, { "logstash.k8s.elastic.co/name": "shopfds-prod-logging" });
const elasticsearch = pod(NS, { "elasticsearch.k8s.elastic.co/cluster-name": "shopfds-prod-logging" });

describe("prod stack: NetworkPolicies", () => {
  const policies = () => h.ofType("kubernetes:networking.k8s.io/v1:NetworkPolicy").map((p) => p.inputs);

  it("denies all ingress to the stack's pods by default", () => {
    const deny = policies().find((p) => p.metadata.name === "shopfds-prod-network-default-deny");
    assert.deepEqual(deny?.spec, { podSelector: {}, policyTypes: ["Ingress"] });
    assert.equal(admits(policies(), pod("default"), redis, 6379), false, "a pod of another namespace cannot reach Redis");
    assert.equal(admits(policies(), pod("default"), postgres, 5432), false);
    assert.equal(admits(policies(), pod("default"), service, 8080), false, "nor the service, except through the ingress controller");
  });

  it("lets the stack's own pods reach each other (the service and workers to PostgreSQL, Redis, Logstash)", () => {
    assert.equal(admits(policies(), service, postgres, 5432), true);
    assert.equal(admits(policies(), worker, redis, 6379), true);
    assert.equal(admits(policies(), redis, redis, 16379), true, "the cluster bus");
    assert.equal(admits(policies(), service, logstash, 5045), true);
  });

  it("admits the ingress controller to the service's HTTP port only", () => {
    const ingress = pod("ingress-nginx", { "app.kubernetes.io/name": "ingress-nginx" });
    assert.equal(admits(policies(), ingress, service, 8080), true);
    assert.equal(admits(policies(), ingress, postgres, 5432), false);
    assert.equal(admits(policies(), ingress, worker, 9464), false);
  });

  it("admits Prometheus to the metrics ports only, the operators to what they manage, Filebeat to Logstash's Beats input only", () => {
    const prometheus = pod("monitoring", { "app.kubernetes.io/name": "prometheus" });
    assert.equal(admits(policies(), prometheus, worker, 9464), true);
    assert.equal(admits(policies(), prometheus, postgres, 9187), true);
    assert.equal(admits(policies(), prometheus, postgres, 5432), false);
    assert.equal(admits(policies(), pod("cnpg-system"), postgres, 8000), true, "CloudNativePG's status calls to its instance manager");
    assert.equal(admits(policies(), pod("elastic-system"), elasticsearch, 9200), true);
    const filebeat = pod("shopfds-prod-log-shipping", { "beat.k8s.elastic.co/name": "shopfds-prod-logging-filebeat" });
    assert.equal(admits(policies(), filebeat, logstash, 5044), true);
    assert.equal(admits(policies(), filebeat, elasticsearch, 9200), false);
    assert.equal(admits(policies(), filebeat, redis, 6379), false);
  });

  it("lets the ingress controller reach cert-manager's HTTP-01 solver pods on their port, and nobody else", () => {
    const solver = pod(NS, { "acme.cert-manager.io/http01-solver": "true", "acme.cert-manager.io/http-domain": "1234" });
    const ingress = pod("ingress-nginx", { "app.kubernetes.io/name": "ingress-nginx" });
    assert.equal(admits(policies(), ingress, solver, 8089), true, "the challenge reaches the solver: issuance and renewals work");
    assert.equal(admits(policies(), ingress, solver, 9402), false, "on its challenge port only");
    assert.equal(admits(policies(), pod("default"), solver, 8089), false);
    assert.equal(admits(policies(), ingress, redis, 8089), false, "the rule selects the solver pods only");
  });
});
