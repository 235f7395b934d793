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
 * Egress is not restricted: the SMTP relay, Sentry and the backup bucket are outside addresses that
 * change (a later egress policy would list them by CIDR or go through an egress gateway).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { KubernetesPlatform } from "./kubernetes";

/** The ports Prometheus scrapes: service, workers, RabbitMQ (15692, or 15691 with TLS), Redis and Elasticsearch exporters, CloudNativePG. */
export const METRICS_PORTS = [8080, 9464, 15692, 15691, 9121, 9114, 9187] as const;

export interface NetworkPoliciesArgs {
  readonly platform: KubernetesPlatform;
  /** Namespaces of the operators that manage pods in the stack's namespace. */
  readonly operatorNamespaces: readonly string[];
  readonly monitoringNamespace: string;
  /** The Filebeat namespace, the Logstash (ECK's name) and port it sends to (undefined when logging is off). */
  readonly logShipping?: { readonly namespace: string; readonly logstash: string; readonly port: number };
  /** The ingress controller's namespace and the service's pods and port it reaches (undefined: no service). */
  readonly ingress?: { readonly namespace: string; readonly serviceName: string; readonly port: number; readonly acmeSolver?: boolean };
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
    this.registerOutputs({});
  }
}
