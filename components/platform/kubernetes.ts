/**
 * Kubernetes backend of the platform layer: a namespace, and per service a StatefulSet behind a
 * headless Service, a ConfigMap for its config files, a Secret for its secret files, a
 * PodDisruptionBudget, and a ClusterIP Service per alias.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { doubleCpu } from "./quantity";
import { DeployedService, Platform, portNamed, ServiceSpec } from "./types";

export interface KubernetesPlatformArgs {
  /** Namespace that holds every resource of the stack (created here). */
  readonly namespace: string;
  /** StorageClass of the PersistentVolumeClaims; the cluster default when absent. */
  readonly storageClass?: string;
}

/** A ConfigMap/Secret key for a file path: `/etc/postgresql/pg_hba.conf` → `etc-postgresql-pg_hba.conf`. */
export function fileKey(path: string): string {
  return path.replace(/^\/+/, "").replace(/[^A-Za-z0-9._-]/g, "-");
}

export class KubernetesPlatform extends pulumi.ComponentResource implements Platform {
  readonly kind = "kubernetes" as const;
  /** Pods connect from anywhere in the cluster network; authentication (SCRAM) is what admits them. */
  readonly clientCidrs: readonly string[] = ["0.0.0.0/0", "::/0"];
  declare readonly namespace: k8s.core.v1.Namespace;
  private readonly args: KubernetesPlatformArgs;

  constructor(name: string, args: KubernetesPlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:platform:Kubernetes", name, {}, opts);
    this.args = args;
    this.namespace = new k8s.core.v1.Namespace(
      args.namespace,
      { metadata: { name: args.namespace, labels: { "app.kubernetes.io/part-of": "shopfds" } } },
      { parent: this },
    );
    this.registerOutputs({ namespace: this.namespace.metadata.name });
  }

  deploy(spec: ServiceSpec, parent: pulumi.Resource): DeployedService {
    const ns = this.args.namespace;
    const selector = { "app.kubernetes.io/name": spec.name };
    const labels = { ...selector, "app.kubernetes.io/instance": spec.instance, "app.kubernetes.io/component": spec.role, "app.kubernetes.io/part-of": "shopfds" };
    const metadata = (name: string) => ({ name, namespace: ns, labels });
    const opts: pulumi.CustomResourceOptions = { parent, dependsOn: [this.namespace, ...(spec.dependsOn ?? []).flatMap((d) => d.resources)] };
    const configFiles = spec.configFiles ?? [];
    const secretFiles = spec.secretFiles ?? [];

    const configMap =
      configFiles.length > 0
        ? new k8s.core.v1.ConfigMap(`${spec.name}-config`, { metadata: metadata(`${spec.name}-config`), data: Object.fromEntries(configFiles.map((f) => [fileKey(f.path), f.content])) }, opts)
        : undefined;
    const secret =
      secretFiles.length > 0
        ? new k8s.core.v1.Secret(
            `${spec.name}-secrets`,
            { metadata: metadata(`${spec.name}-secrets`), type: "Opaque", stringData: pulumi.secret(pulumi.all(Object.fromEntries(secretFiles.map((f) => [fileKey(f.path), f.content])))) },
            opts,
          )
        : undefined;

    const ports = spec.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.name }));
    const headless = new k8s.core.v1.Service(
      spec.name,
      { metadata: metadata(spec.name), spec: { clusterIP: "None", publishNotReadyAddresses: true, selector, ports } },
      opts,
    );
    const aliasServices = (spec.aliases ?? []).map(
      (alias) => new k8s.core.v1.Service(alias, { metadata: metadata(alias), spec: { type: "ClusterIP", selector, ports } }, opts),
    );

    const hc = spec.healthCheck;
    const exec = { command: [...hc.command] };
    const volumeMounts = [
      ...(spec.volumes ?? []).map((v) => ({ name: v.name, mountPath: v.mountPath })),
      ...configFiles.map((f) => ({ name: "config", mountPath: f.path, subPath: fileKey(f.path), readOnly: true })),
      ...secretFiles.map((f) => ({ name: "secrets", mountPath: f.path, subPath: fileKey(f.path), readOnly: true })),
    ];
    const podVolumes = [
      ...(configMap
        ? [{ name: "config", configMap: { name: configMap.metadata.name, items: configFiles.map((f) => ({ key: fileKey(f.path), path: fileKey(f.path), mode: f.executable ? 0o755 : 0o644 })) } }]
        : []),
      ...(secret ? [{ name: "secrets", secret: { secretName: secret.metadata.name, defaultMode: 0o440 } }] : []),
    ];

    const statefulSet = new k8s.apps.v1.StatefulSet(
      spec.name,
      {
        metadata: metadata(spec.name),
        spec: {
          serviceName: headless.metadata.name,
          replicas: spec.replicas,
          selector: { matchLabels: selector },
          template: {
            metadata: { labels },
            spec: {
              securityContext: spec.runAs ? { runAsUser: spec.runAs.uid, runAsGroup: spec.runAs.gid, fsGroup: spec.runAs.gid, runAsNonRoot: true } : undefined,
              // Spread instances over nodes where the cluster has several.
              affinity: {
                podAntiAffinity: {
                  preferredDuringSchedulingIgnoredDuringExecution: [
                    { weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: { "app.kubernetes.io/instance": spec.instance } } } },
                  ],
                },
              },
              terminationGracePeriodSeconds: 60,
              containers: [
                {
                  name: spec.role,
                  image: spec.image,
                  command: spec.entrypoint ? [...spec.entrypoint] : undefined,
                  args: spec.command ? [...spec.command] : undefined,
                  env: Object.entries(spec.env ?? {}).map(([name, value]) => ({ name, value })),
                  ports: spec.ports.map((p) => ({ name: p.name, containerPort: p.port })),
                  volumeMounts,
                  resources: {
                    requests: { cpu: spec.resources.cpu, memory: spec.resources.memory },
                    limits: { cpu: doubleCpu(spec.resources.cpu), memory: spec.resources.memory },
                  },
                  startupProbe: { exec, periodSeconds: hc.intervalSeconds, timeoutSeconds: hc.timeoutSeconds, failureThreshold: Math.max(1, Math.ceil(hc.startPeriodSeconds / hc.intervalSeconds)) },
                  readinessProbe: { exec, periodSeconds: hc.intervalSeconds, timeoutSeconds: hc.timeoutSeconds, failureThreshold: hc.retries },
                  // Liveness tolerates twice the failures readiness does: an overloaded server is taken out of
                  // rotation well before it is restarted.
                  livenessProbe: { exec, periodSeconds: hc.intervalSeconds, timeoutSeconds: hc.timeoutSeconds, failureThreshold: hc.retries * 2 },
                },
              ],
              volumes: podVolumes,
            },
          },
          volumeClaimTemplates: (spec.volumes ?? []).map((v) => ({
            metadata: { name: v.name, labels },
            spec: { accessModes: ["ReadWriteOnce"], storageClassName: this.args.storageClass, resources: { requests: { storage: v.size } } },
          })),
        },
      },
      { ...opts, dependsOn: [...(opts.dependsOn as pulumi.Resource[]), headless, ...(configMap ? [configMap] : []), ...(secret ? [secret] : [])] },
    );

    const pdb = new k8s.policy.v1.PodDisruptionBudget(spec.name, { metadata: metadata(spec.name), spec: { maxUnavailable: 1, selector: { matchLabels: selector } } }, opts);

    const dns = (host: string) => `${host}.${ns}.svc.cluster.local`;
    return {
      name: spec.name,
      resources: [statefulSet, headless, ...aliasServices, pdb],
      internalHost: (i) => dns(`${spec.name}-${i}.${spec.name}`),
      instanceEndpoints: (portName) => {
        const port = portNamed(spec, portName).port;
        return Array.from({ length: spec.replicas }, (_, i) => ({ host: dns(`${spec.name}-${i}.${spec.name}`), port }));
      },
      aliasEndpoint: (alias, portName) => {
        if (!(spec.aliases ?? []).includes(alias)) throw new Error(`service ${spec.name} has no alias "${alias}"`);
        return { host: dns(alias), port: portNamed(spec, portName).port };
      },
    };
  }
}
