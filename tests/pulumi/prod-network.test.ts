/**
 * Layer 2: the prod stack's NetworkPolicies, judged by what they let through. A small evaluator applies
 * Kubernetes' rules for ingress (a pod selected by any policy admits only what some policy allows; rules
 * are ORed; a `from` entry matches by namespace and/or pod labels; ports, when listed, must match) to the
 * policies the program declares, and each flow of the design is checked both ways.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { MockHarness } from "./harness";
import { RESTRICTED_ROLES } from "../../components/platform/network-policies";

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

interface Expression {
  readonly key: string;
  readonly operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  readonly values?: string[];
}
/** A label selector as Kubernetes applies it: every matchLabels pair and every matchExpressions term. */
const matches = (selector: { matchLabels?: Labels; matchExpressions?: Expression[] } | undefined, labels: Labels) =>
  Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
  (selector?.matchExpressions ?? []).every((e) => {
    const has = e.key in labels;
    if (e.operator === "In") return has && e.values!.includes(labels[e.key]!);
    if (e.operator === "NotIn") return !has || !e.values!.includes(labels[e.key]!);
    return e.operator === "Exists" ? has : !has;
  });

/** An IPv4 address inside a CIDR block (the tests' outside addresses are IPv4). */
function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split("/") as [string, string];
  if (base.includes(":")) return false;
  const n = (a: string) => a.split(".").reduce((acc, x) => acc * 256 + Number(x), 0);
  const size = 2 ** (32 - Number(bits));
  return Math.floor(n(ip) / size) === Math.floor(n(base) / size);
}

type Destination = Peer | { readonly ip: string };

/** Whether the declared policies let `from` open a connection to `to` on `port` (egress side only). */
function sends(policies: any[], from: Peer, to: Destination, port: number, protocol: "TCP" | "UDP" = "TCP"): boolean {
  const selecting = policies.filter((p) => p.metadata.namespace === from.namespace && p.spec.policyTypes.includes("Egress") && matches(p.spec.podSelector, from.labels));
  if (selecting.length === 0) return true; // egress not isolated
  return selecting.some((p) =>
    (p.spec.egress ?? []).some((rule: any) => {
      const portOk = !rule.ports || rule.ports.some((x: any) => x.port === port && (x.protocol ?? "TCP") === protocol);
      const peerOk =
        !rule.to ||
        rule.to.some((t: any) => {
          if ("ip" in to) return t.ipBlock !== undefined && inCidr(to.ip, t.ipBlock.cidr) && !(t.ipBlock.except ?? []).some((e: string) => inCidr(to.ip, e));
          if (t.ipBlock) return false;
          const nsOk = t.namespaceSelector ? matches(t.namespaceSelector, { "kubernetes.io/metadata.name": to.namespace }) : to.namespace === p.metadata.namespace;
          return nsOk && (t.podSelector ? matches(t.podSelector, to.labels) : true);
        });
      return portOk && peerOk;
    }),
  );
}

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

const app = (component: string) => pod(NS, { "app.kubernetes.io/name": `shopfds-prod-${component}`, "app.kubernetes.io/component": component, "app.kubernetes.io/part-of": "shopfds" });
const withRole = (p: Peer, component: string): Peer => ({ ...p, labels: { ...p.labels, "app.kubernetes.io/component": component, "app.kubernetes.io/part-of": "shopfds" } });
const rabbit = pod(NS, { "app.kubernetes.io/name": "shopfds-prod-rabbitmq", "app.kubernetes.io/component": "rabbitmq", "app.kubernetes.io/part-of": "rabbitmq" });
const kubeDns = pod("kube-system", { "k8s-app": "kube-dns" });
const kibana = pod(NS, { "kibana.k8s.elastic.co/name": "shopfds-prod-logging" });
const SENTRY = "34.120.195.249";
const SES = "52.79.110.11"; // an address in a public range, like the SES relay's

describe("prod stack: egress NetworkPolicies", () => {
  const policies = () => h.ofType("kubernetes:networking.k8s.io/v1:NetworkPolicy").map((p) => p.inputs);
  const svc = withRole(service, "service");
  const wrk = withRole(worker, "worker");
  const node = withRole(redis, "node");
  /** A whole connection: the sender's egress and the receiver's ingress both let it through. */
  const connects = (from: Peer, to: Peer, port: number) => sends(policies(), from, to, port) && admits(policies(), from, to, port);

  it("restricts the egress of every pod the program runs in the namespace, and of nothing else", () => {
    const templates = h.resources
      .filter((r) => ["kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:batch/v1:Job"].includes(r.type) && r.inputs.metadata.namespace === NS)
      .map((r) => r.inputs.spec.template.metadata.labels as Labels);
    assert.deepEqual([...new Set(templates.map((l) => l["app.kubernetes.io/component"]!))].sort(), [...RESTRICTED_ROLES].sort(), "a new workload needs an egress decision");
    for (const labels of templates) assert.equal(sends(policies(), pod(NS, labels), { ip: "198.51.100.7" }, 443), false, `${labels["app.kubernetes.io/name"]}: not anywhere`);
    // The operators' pods keep their egress: CloudNativePG archives WAL to the bucket, RabbitMQ's peer discovery and ECK call the API.
    assert.equal(sends(policies(), postgres, { ip: "52.95.1.1" }, 443), true);
    assert.equal(sends(policies(), rabbit, { ip: "10.96.0.1" }, 443), true);
  });

  it("lets every restricted pod resolve names through the cluster's DNS only", () => {
    for (const p of [svc, wrk, node, app("flower"), app("migrate"), app("cluster-create")]) {
      assert.equal(sends(policies(), p, kubeDns, 53, "UDP"), true);
      assert.equal(sends(policies(), p, kubeDns, 53, "TCP"), true);
    }
    assert.equal(sends(policies(), svc, pod("default", { "k8s-app": "kube-dns" }), 53, "UDP"), false, "kube-dns's labels in another namespace are not the DNS");
    assert.equal(sends(policies(), svc, { ip: "8.8.8.8" }, 53, "UDP"), false, "no outside resolver");
  });

  it("lets the workloads reach the data services they use, TLS ports only, and no other", () => {
    assert.equal(connects(svc, postgres, 5432), true);
    assert.equal(connects(svc, redis, 6379), true);
    assert.equal(connects(svc, rabbit, 5671), true);
    assert.equal(sends(policies(), svc, rabbit, 5672), false, "RabbitMQ takes AMQPS only");
    assert.equal(connects(wrk, redis, 6379) && connects(wrk, postgres, 5432) && connects(wrk, rabbit, 5671), true);
    assert.equal(connects(app("scheduler"), rabbit, 5671) && connects(app("scheduler"), postgres, 5432), true);
    assert.equal(sends(policies(), app("scheduler"), redis, 6379), false, "the scheduler has no use for Redis");
    assert.equal(connects(app("migrate"), postgres, 5432), true);
    assert.equal(sends(policies(), app("migrate"), rabbit, 5671) || sends(policies(), app("migrate"), redis, 6379), false);
    assert.equal(connects(app("flower"), rabbit, 5671) && connects(app("flower"), rabbit, 15671), true);
    assert.equal(sends(policies(), app("flower"), postgres, 5432), false);
    assert.equal(connects(node, redis, 16379) && connects(node, redis, 6379), true, "replication and the cluster bus");
    assert.equal(sends(policies(), node, postgres, 5432), false);
    assert.equal(connects(app("cluster-create"), redis, 6379) && connects(app("redis-exporter"), redis, 6379), true);
    assert.equal(sends(policies(), app("redis-exporter"), postgres, 5432), false);
    assert.equal(connects(app("logging-setup"), elasticsearch, 9200) && connects(app("logging-setup"), kibana, 5601) && connects(app("elasticsearch-exporter"), elasticsearch, 9200), true);
    assert.equal(sends(policies(), app("logging-setup"), redis, 6379), false);
    assert.equal(sends(policies(), svc, elasticsearch, 9200), false, "the services log to stdout; Filebeat ships it");
    assert.equal(sends(policies(), svc, pod("default", { app: "anything" }), 8080), false, "nor another namespace's pods");
  });

  it("lets only the worker reach the SMTP relay (public addresses on its port), and the workloads Sentry's ingest, nothing else outside", () => {
    assert.equal(sends(policies(), wrk, { ip: SES }, 587), true);
    assert.equal(sends(policies(), wrk, { ip: SES }, 25), false, "on the relay's port only");
    assert.equal(sends(policies(), svc, { ip: SES }, 587), false, "the service only queues e-mail");
    for (const ip of ["169.254.169.254", "10.0.12.7", "172.20.0.1", "192.168.1.1", "100.64.0.9"]) assert.equal(sends(policies(), wrk, { ip }, 587), false, `${ip}: not a relay (private, or the cloud's metadata)`);
    for (const p of [svc, wrk, app("scheduler")]) assert.equal(sends(policies(), p, { ip: SENTRY }, 443), true);
    assert.equal(sends(policies(), svc, { ip: SENTRY }, 80), false);
    assert.equal(sends(policies(), svc, { ip: "34.120.195.250" }, 443), false, "Sentry's listed addresses only");
    assert.equal(sends(policies(), app("flower"), { ip: SENTRY }, 443), false);
  });

  it("keeps the egress policies egress-only: none of them admits anything in", () => {
    for (const p of policies().filter((x) => x.metadata.name.includes("-egress-"))) {
      assert.deepEqual(p.spec.policyTypes, ["Egress"], p.metadata.name);
      assert.equal(p.spec.ingress, undefined, p.metadata.name);
    }
  });
});

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
