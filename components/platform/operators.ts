/**
 * The operators the Kubernetes stacks stand on, installed by the program at pinned versions (Helm
 * releases; the RabbitMQ Cluster Operator from its release manifest, which is how its maintainers ship
 * it). Each version here is the one whose CRDs tests/fixtures/crds holds and the mock tests validate
 * against: change both together (tests/pulumi/operators.test.ts checks they match).
 *
 * Why in the application program rather than a separate add-ons stack: one `pulumi up` brings a fresh
 * cluster to a working ShopFDS, and the CRs are ordered after the operators that serve them. A cluster
 * whose operators are managed elsewhere sets `shopfds:kubernetes.operators: existing`, and the program
 * then only declares the custom resources (ARCHITECTURE.md, "Operators").
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { KubernetesPlatform } from "./kubernetes";

import { OPERATORS, type HelmOperator } from "../versions";

export { OPERATORS, type HelmOperator };

/**
 * Memory (request = limit) of the operators' own pods, set where the chart sets none (CloudNativePG's
 * chart: `resources: {}`; cert-manager's: `{}`) or more than a small cluster has (ECK's limit is 1Gi).
 * The RabbitMQ operator's manifest fixes its own (500Mi). tests/upstream/budgets.test.ts adds them up.
 */
export const OPERATOR_MEMORY = { cnpg: "200Mi", eck: "256Mi", certManager: { controller: "128Mi", webhook: "64Mi", cainjector: "128Mi", startupapicheck: "64Mi" }, rabbitmq: "500Mi" } as const;
const memory = (m: string) => ({ requests: { memory: m }, limits: { memory: m } });

export interface ClusterOperatorsArgs {
  readonly platform: KubernetesPlatform;
  /** `install`: this program installs them; `existing`: the cluster already runs them (nothing declared). */
  readonly mode: "install" | "existing";
  /** Values of the kube-prometheus-stack release (ShopFDS's Prometheus, Alertmanager and Grafana). */
  readonly prometheusStackValues: pulumi.Input<Record<string, unknown>>;
}

/** What a custom resource of each operator must wait for (nothing when the operators already exist). */
export interface OperatorReadiness {
  readonly cnpg: pulumi.Resource[];
  readonly eck: pulumi.Resource[];
  readonly prometheus: pulumi.Resource[];
  readonly rabbitmq: pulumi.Resource[];
  /** cert-manager (the RabbitMQ operator's webhook certificates, the edge's Issuer and Certificate). */
  readonly certManager: pulumi.Resource[];
}


export class ClusterOperators extends pulumi.ComponentResource {
  declare readonly ready: OperatorReadiness;

  constructor(name: string, args: ClusterOperatorsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:k8s:ClusterOperators", name, {}, opts);
    const provider = args.platform.provider;
    if (args.mode === "existing") {
      this.ready = { cnpg: [], eck: [], prometheus: [], rabbitmq: [], certManager: [] };
      this.registerOutputs({});
      return;
    }
    const release = (key: "cnpg" | "eck" | "prometheus" | "certManager", values: pulumi.Input<Record<string, unknown>>, dependsOn: pulumi.Resource[] = []) => {
      const o: HelmOperator = OPERATORS[key];
      return new k8s.helm.v3.Release(
        `${name}-${o.chart}`,
        {
          name: o.chart,
          chart: o.chart,
          version: o.version,
          repositoryOpts: { repo: o.repo },
          namespace: o.namespace,
          createNamespace: true,
          // A failed upgrade is rolled back rather than left half-applied.
          atomic: true,
          cleanupOnFail: true,
          timeout: 900,
          values,
        },
        { parent: this, provider, dependsOn },
      );
    };
    const cnpg = release("cnpg", { monitoring: { podMonitorEnabled: false }, crds: { create: true }, resources: memory(OPERATOR_MEMORY.cnpg) });
    const eck = release("eck", { installCRDs: true, resources: memory(OPERATOR_MEMORY.eck) });
    const cm = OPERATOR_MEMORY.certManager;
    const certManager = release("certManager", {
      crds: { enabled: true },
      resources: memory(cm.controller),
      webhook: { resources: memory(cm.webhook) },
      cainjector: { resources: memory(cm.cainjector) },
      startupapicheck: { resources: memory(cm.startupapicheck) },
    });
    const rabbitmq = new k8s.yaml.v2.ConfigFile(`${name}-rabbitmq-cluster-operator`, { file: OPERATORS.rabbitmq.manifest }, { parent: this, provider, dependsOn: [certManager] });
    // The Prometheus stack's own objects are scraped and alerted on only once its CRDs exist.
    const prometheus = release("prometheus", args.prometheusStackValues);
    this.ready = { cnpg: [cnpg], eck: [eck], prometheus: [prometheus], rabbitmq: [rabbitmq], certManager: [certManager] };
    this.registerOutputs({});
  }
}
