/**
 * NetworkPolicies of a Kubernetes stack: nothing reaches a pod of the stack's namespace unless a
 * policy below lets it (default deny of ingress), then the flows the design needs:
 * - inside the namespace, pod to pod (the stack is the trust boundary: the service, workers, scheduler
 *   and jobs reach PostgreSQL, Redis, RabbitMQ, Logstash; members of a cluster reach each other;
 *   every such connection is still authenticated);
 * - the operators (CloudNativePG, ECK, RabbitMQ) reach the pods they manage (status, configuration);
 * - Prometheus (the monitoring namespace) reaches the metrics ports;
 * - Filebeat (the log-shipping namespace) reaches Logstash's Beats input;
 * - the ingress controller's namespace reaches the reference service's HTTP port.
 *
 * Egress of ShopFDS's own pods (the ones the program runs, by their `app.kubernetes.io/component`; the
 * operators' pods keep theirs: CloudNativePG archives to the backup bucket, RabbitMQ's peer discovery
 * and ECK's pods call the Kubernetes API) is denied but for: the cluster's DNS; PostgreSQL, Redis and
 * RabbitMQ for the workloads that use them; Elasticsearch and Kibana for the logging setup and the
 * exporter; and, from `shopfds:egress`, the SMTP relay (the worker), Sentry and an OTLP collector.
 * Replies to admitted ingress (Prometheus's scrapes) are not egress and need no rule.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { KubernetesPlatform } from "./kubernetes";

/** The ports Prometheus scrapes: service, workers, RabbitMQ (15692, or 15691 with TLS), Redis and Elasticsearch exporters, CloudNativePG. */
export const METRICS_PORTS = [8080, 9464, 15692, 15691, 9121, 9114, 9187] as const;

/** An egress destination beyond the stack: address blocks with holes, or a namespace's pods. */
export type EgressPeer = { readonly cidrs?: readonly string[]; readonly except?: readonly string[]; readonly namespace?: string };

/** Pods of the stack by the label the platform gives every workload (components/platform/kubernetes.ts). */
const COMPONENT = "app.kubernetes.io/component";

/** The roles (ServiceSpec.role) of the pods the program runs in the stack's namespace, whose egress is restricted. */
export const RESTRICTED_ROLES = ["service", "worker", "scheduler", "migrate", "flower", "node", "cluster-create", "redis-exporter", "elasticsearch-exporter", "logging-setup"] as const;
export type RestrictedRole = (typeof RESTRICTED_ROLES)[number];

export interface EgressTargets {
  readonly dns: { readonly namespace: string; readonly podLabels: Readonly<Record<string, string>> };
  /** Pod labels and ports of each data service in the stack's namespace. */
  readonly postgres: { readonly podLabels: Readonly<Record<string, string>>; readonly port: number };
  readonly redis: { readonly podLabels: Readonly<Record<string, string>>; readonly port: number; readonly busPort: number };
  readonly rabbitmq: { readonly podLabels: Readonly<Record<string, string>>; readonly amqpPort: number; readonly managementPort: number };
  readonly elasticsearch?: { readonly podLabels: Readonly<Record<string, string>>; readonly port: number; readonly kibanaPodLabels: Readonly<Record<string, string>>; readonly kibanaPort: number };
  readonly smtp: { readonly peer: EgressPeer; readonly port: number };
  readonly sentry?: { readonly cidrs: readonly string[]; readonly port: number };
  readonly otlp?: { readonly peer: EgressPeer; readonly port: number };
}

/** One allowed flow: which roles, to what, on which ports. */
export interface EgressFlow {
  readonly suffix: string;
  readonly from: readonly RestrictedRole[];
  readonly to: k8s.types.input.networking.v1.NetworkPolicyPeer[];
  readonly ports: { protocol: "TCP" | "UDP"; port: number }[];
}

const APP: RestrictedRole[] = ["service", "worker", "scheduler"];
const tcpPort = (port: number) => ({ protocol: "TCP" as const, port });
const inNamespace = (podLabels: Readonly<Record<string, string>>) => ({ podSelector: { matchLabels: { ...podLabels } } });

/** An egress peer as NetworkPolicy peers: one ipBlock per block with the holes inside it, or a namespace. */
export function egressPeers(peer: EgressPeer, within: (hole: string, block: string) => boolean): k8s.types.input.networking.v1.NetworkPolicyPeer[] {
  if (peer.namespace) return [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": peer.namespace } } }];
  return (peer.cidrs ?? []).map((cidr) => {
    const holes = (peer.except ?? []).filter((h) => within(h, cidr));
    return { ipBlock: { cidr, ...(holes.length > 0 ? { except: holes } : {}) } };
  });
}

/** The flows ShopFDS's pods may open (the design, as data: the policies below and tests/pulumi/prod-network.test.ts read it). */
export function egressFlows(t: EgressTargets, within: (hole: string, block: string) => boolean): EgressFlow[] {
  const redis = [inNamespace(t.redis.podLabels)];
  return [
    { suffix: "dns", from: [...RESTRICTED_ROLES], to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": t.dns.namespace } }, podSelector: { matchLabels: { ...t.dns.podLabels } } }], ports: [{ protocol: "UDP", port: 53 }, tcpPort(53)] },
    { suffix: "postgres", from: [...APP, "migrate"], to: [inNamespace(t.postgres.podLabels)], ports: [tcpPort(t.postgres.port)] },
    { suffix: "redis", from: ["service", "worker", "cluster-create", "redis-exporter", "node"], to: redis, ports: [tcpPort(t.redis.port)] },
    { suffix: "redis-bus", from: ["node"], to: redis, ports: [tcpPort(t.redis.busPort)] },
    { suffix: "rabbitmq", from: [...APP, "flower"], to: [inNamespace(t.rabbitmq.podLabels)], ports: [tcpPort(t.rabbitmq.amqpPort)] },
    { suffix: "rabbitmq-management", from: ["flower"], to: [inNamespace(t.rabbitmq.podLabels)], ports: [tcpPort(t.rabbitmq.managementPort)] },
    ...(t.elasticsearch
      ? [
          { suffix: "elasticsearch", from: ["logging-setup", "elasticsearch-exporter"] as RestrictedRole[], to: [inNamespace(t.elasticsearch.podLabels)], ports: [tcpPort(t.elasticsearch.port)] },
          { suffix: "kibana", from: ["logging-setup"] as RestrictedRole[], to: [inNamespace(t.elasticsearch.kibanaPodLabels)], ports: [tcpPort(t.elasticsearch.kibanaPort)] },
        ]
      : []),
    { suffix: "smtp", from: ["worker"], to: egressPeers(t.smtp.peer, within), ports: [tcpPort(t.smtp.port)] },
    ...(t.sentry ? [{ suffix: "sentry", from: [...APP, "migrate"] as RestrictedRole[], to: egressPeers({ cidrs: t.sentry.cidrs }, within), ports: [tcpPort(t.sentry.port)] }] : []),
    ...(t.otlp ? [{ suffix: "otlp", from: [...APP] as RestrictedRole[], to: egressPeers(t.otlp.peer, within), ports: [tcpPort(t.otlp.port)] }] : []),
  ];
}

const roles = (list: readonly string[]) => ({ matchExpressions: [{ key: COMPONENT, operator: "In", values: [...list] }] });

export interface NetworkPoliciesArgs {
  readonly platform: KubernetesPlatform;
  /** Namespaces of the operators that manage pods in the stack's namespace. */
  readonly operatorNamespaces: readonly string[];
  readonly monitoringNamespace: string;
  /** The Filebeat namespace, the Logstash (ECK's name) and port it sends to (undefined when logging is off). */
  readonly logShipping?: { readonly namespace: string; readonly logstash: string; readonly port: number };
  /** The ingress controller's namespace and the service's pods and port it reaches (undefined: no service). */
  readonly ingress?: { readonly namespace: string; readonly serviceName: string; readonly port: number; readonly acmeSolver?: boolean };
  /** Where ShopFDS's pods may connect (egressFlows); every other egress of theirs is denied. */
  readonly egress: EgressTargets;
  /** Whether CIDR `hole` lies inside CIDR `block` (components/config.ts cidrWithin). */
  readonly cidrWithin: (hole: string, block: string) => boolean;
}

/**
 * cert-manager's HTTP-01 solver pods (created in the Certificate's namespace while an order is open): the
 * label they carry and the port they answer the ACME challenge on (tests/fixtures/upstream/facts.yaml).
 */
export const ACME_SOLVER = { labels: { "acme.cert-manager.io/http01-solver": "true" }, port: 8089 } as const;

const fromNamespace = (name: string) => ({ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": name } } });

export class NetworkPolicies extends pulumi.ComponentResource {
  constructor(name: string, args: NetworkPoliciesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:k8s:NetworkPolicies", name, {}, opts);
    const platform = args.platform;
    const ns = platform.namespaceName;
    const policy = (suffix: string, spec: k8s.types.input.networking.v1.NetworkPolicySpec) =>
      new k8s.networking.v1.NetworkPolicy(
        `${name}-${suffix}`,
        { metadata: { name: `${name}-${suffix}`, namespace: ns, labels: { "app.kubernetes.io/part-of": "shopfds" } }, spec },
        platform.objectOptions(this),
      );
    const tcp = (port: number) => ({ protocol: "TCP", port });

    policy("default-deny", { podSelector: {}, policyTypes: ["Ingress"] });
    policy("same-namespace", { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: {} }] }] });
    policy("operators", { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: args.operatorNamespaces.map(fromNamespace) }] });
    policy("monitoring", { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [fromNamespace(args.monitoringNamespace)], ports: METRICS_PORTS.map(tcp) }] });
    if (args.logShipping) {
      policy("log-shipping", {
        // ECK labels Logstash's pods with its name.
        podSelector: { matchLabels: { "logstash.k8s.elastic.co/name": args.logShipping.logstash } },
        policyTypes: ["Ingress"],
        ingress: [{ from: [fromNamespace(args.logShipping.namespace)], ports: [tcp(args.logShipping.port)] }],
      });
    }
    if (args.ingress) {
      policy("ingress", {
        podSelector: { matchLabels: { "app.kubernetes.io/name": args.ingress.serviceName } },
        policyTypes: ["Ingress"],
        ingress: [{ from: [fromNamespace(args.ingress.namespace)], ports: [tcp(args.ingress.port)] }],
      });
      // The controller forwards Let's Encrypt's challenge requests to the solver: without this the
      // default deny above fails every issuance and renewal of the edge's certificate.
      if (args.ingress.acmeSolver)
        policy("acme-solver", {
          podSelector: { matchLabels: { ...ACME_SOLVER.labels } },
          policyTypes: ["Ingress"],
          ingress: [{ from: [fromNamespace(args.ingress.namespace)], ports: [tcp(ACME_SOLVER.port)] }],
        });
    }
    policy("egress-default-deny", { podSelector: roles(RESTRICTED_ROLES), policyTypes: ["Egress"] });
    for (const flow of egressFlows(args.egress, args.cidrWithin))
      policy(`egress-${flow.suffix}`, { podSelector: roles(flow.from), policyTypes: ["Egress"], egress: [{ to: flow.to, ports: flow.ports }] });
    this.registerOutputs({});
  }
}
