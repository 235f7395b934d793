/**
 * Kubernetes backend of the platform layer: a namespace, and per service a StatefulSet behind a
 * headless Service (or, for a stateless service, a Deployment behind a ClusterIP Service, with a
 * HorizontalPodAutoscaler when it autoscales), a ConfigMap for its config files, a Secret for its
 * secret files, a PodDisruptionBudget when it has two instances or more, and a ClusterIP Service per alias.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { doubleCpu } from "./quantity";
import { ConfigFile, DeployedService, ExistingSecretFiles, JobSpec, Platform, portNamed, SecretFile, ServiceSpec } from "./types";

export interface KubernetesPlatformArgs {
  /** Namespace that holds every resource of the stack (created here). */
  readonly namespace: string;
  /** The kubeconfig context every resource is deployed into (an explicit provider, never the current context). */
  readonly context: string;
  /** A kubeconfig file; the default one when absent. */
  readonly kubeconfig?: string;
  /**
   * Protects what holds data from deletion by Pulumi (`protect`): the namespace (whose deletion or
   * replacement deletes every claim in it; also kept on `pulumi destroy`, `retainOnDelete`) and every
   * workload with volumes. Lifting it is a deliberate `pulumi state unprotect`. @default true
   */
  readonly protect?: boolean;
  /** StorageClass of the PersistentVolumeClaims; the cluster default when absent. */
  readonly storageClass?: string;
  /** The cluster's DNS domain. @default "cluster.local" */
  readonly clusterDomain?: string;
}

/** A ConfigMap/Secret key for a file path: `/etc/postgresql/pg_hba.conf` → `etc-postgresql-pg_hba.conf`. */
export function fileKey(path: string): string {
  return path.replace(/^\/+/, "").replace(/[^A-Za-z0-9._-]/g, "-");
}

/**
 * Pod Security "restricted" for every pod: its user (never root), fsGroup = its group (the kubelet
 * then makes Secret and ConfigMap files group-readable by it: secret files stay 0440, never
 * world-readable), the runtime's default seccomp profile, and no service-account token (no workload
 * here talks to the Kubernetes API).
 */
function podSecurity(runAs: { uid: number; gid: number }) {
  return {
    automountServiceAccountToken: false,
    securityContext: { runAsUser: runAs.uid, runAsGroup: runAs.gid, fsGroup: runAs.gid, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
  };
}

/** Every container: no privilege escalation, every capability dropped. */
const CONTAINER_SECURITY = { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } };

export class KubernetesPlatform extends pulumi.ComponentResource implements Platform {
  readonly kind = "kubernetes" as const;
  /** Pods connect from anywhere in the cluster network; authentication (SCRAM) is what admits them. */
  readonly clientCidrs: readonly string[] = ["0.0.0.0/0", "::/0"];
  declare readonly namespace: k8s.core.v1.Namespace;
  /** Every Kubernetes resource of the stack goes through this provider. */
  declare readonly provider: k8s.Provider;
  private readonly args: KubernetesPlatformArgs;

  constructor(name: string, args: KubernetesPlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:platform:Kubernetes", name, {}, opts);
    this.args = args;
    this.provider = new k8s.Provider(`${name}-k8s`, { context: args.context, ...(args.kubeconfig ? { kubeconfig: args.kubeconfig } : {}) }, { parent: this });
    this.namespace = new k8s.core.v1.Namespace(
      args.namespace,
      {
        metadata: {
          name: args.namespace,
          labels: {
            "app.kubernetes.io/part-of": "shopfds",
            // The stack's own pods meet "restricted" (tests/pulumi/pod-audit.ts); the operators' pods
            // (PostgreSQL, Elasticsearch, RabbitMQ) are their maintainers' to keep compliant, so the
            // namespace enforces "baseline" and warns and audits against "restricted".
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
          },
        },
      },
      { parent: this, provider: this.provider, protect: args.protect ?? true, retainOnDelete: args.protect ?? true },
    );
    this.registerOutputs({ namespace: this.namespace.metadata.name });
  }

  /** The stack's namespace. */
  get namespaceName(): string {
    return this.args.namespace;
  }

  /** Whether data-holding resources are protected (KubernetesPlatformArgs.protect). */
  get protectsData(): boolean {
    return this.args.protect ?? true;
  }

  get storageClass(): string | undefined {
    return this.args.storageClass;
  }

  /** `name.namespace.svc`: the form of a Service's name that operators' certificates carry. */
  serviceHost(name: string): string {
    return `${name}.${this.args.namespace}.svc`;
  }

  /**
   * `name.namespace.svc.<cluster domain>`: the fully qualified form, for resolvers that apply no search
   * list (node:dns's resolve4, which replica discovery uses).
   */
  serviceFqdn(name: string): string {
    return `${this.serviceHost(name)}.${this.args.clusterDomain ?? "cluster.local"}`;
  }

  /** A Service of the stack declared by a component (one the platform's deploy() does not make, e.g. over an operator's pods). */
  service(parent: pulumi.Resource, name: string, spec: pulumi.Input<k8s.types.input.core.v1.ServiceSpec>, instance: string, dependsOn: readonly pulumi.Resource[] = []): k8s.core.v1.Service {
    return new k8s.core.v1.Service(
      name,
      { metadata: { name, namespace: this.args.namespace, labels: { "app.kubernetes.io/instance": instance, "app.kubernetes.io/part-of": "shopfds" } }, spec },
      this.objectOptions(parent, dependsOn),
    );
  }

  /**
   * Options for an object of the stack created by a component (a custom resource, a Secret): this
   * provider, after the namespace and `dependsOn`; `holdsData` adds protection.
   */
  objectOptions(parent: pulumi.Resource, dependsOn: readonly pulumi.Resource[] = [], holdsData = false): pulumi.CustomResourceOptions {
    return { parent, provider: this.provider, dependsOn: [this.namespace, ...dependsOn], protect: holdsData && this.protectsData };
  }

  /**
   * An operator's custom resource in the stack's namespace (or `namespace`), labelled as part of
   * ShopFDS and `instance`, after the operator (`dependsOn`); `holdsData` protects it.
   */
  customResource(
    parent: pulumi.Resource,
    type: { apiVersion: string; kind: string },
    name: string,
    spec: pulumi.Input<Record<string, unknown>>,
    o: { instance: string; labels?: Record<string, string>; dependsOn?: readonly pulumi.Resource[]; holdsData?: boolean; namespace?: string },
  ): k8s.apiextensions.CustomResource {
    const labels = { "app.kubernetes.io/instance": o.instance, "app.kubernetes.io/part-of": "shopfds", ...o.labels };
    return new k8s.apiextensions.CustomResource(
      name,
      { apiVersion: type.apiVersion, kind: type.kind, metadata: { name, namespace: o.namespace ?? this.args.namespace, labels }, spec },
      this.objectOptions(parent, o.dependsOn ?? [], o.holdsData ?? false),
    );
  }

  /** A Secret of the stack (its values kept secret) for a component's own use, e.g. an operator to mount. */
  secret(parent: pulumi.Resource, name: string, data: Record<string, pulumi.Input<string>>, instance: string): k8s.core.v1.Secret {
    return new k8s.core.v1.Secret(
      name,
      { metadata: { name, namespace: this.args.namespace, labels: { "app.kubernetes.io/instance": instance, "app.kubernetes.io/part-of": "shopfds" } }, type: "Opaque", stringData: pulumi.secret(pulumi.all(data)) },
      this.objectOptions(parent),
    );
  }

  deploy(spec: ServiceSpec, parent: pulumi.Resource): DeployedService {
    // Pods reach the node's files only through an operator's agent (ECK's Beat ships the logs here).
    if ((spec.hostPaths ?? []).length > 0) throw new Error(`${spec.name}: hostPaths are a Docker feature; on Kubernetes a node's files are an operator's agent's business`);
    const ns = this.args.namespace;
    const selector = { "app.kubernetes.io/name": spec.name };
    const labels = { ...selector, "app.kubernetes.io/instance": spec.instance, "app.kubernetes.io/component": spec.role, "app.kubernetes.io/part-of": "shopfds" };
    const metadata = (name: string) => ({ name, namespace: ns, labels });
    const opts: pulumi.CustomResourceOptions = { parent, provider: this.provider, dependsOn: [this.namespace, ...(spec.dependsOn ?? []).flatMap((d) => d.resources)] };
    const configFiles = spec.configFiles ?? [];
    const secretFiles = spec.secretFiles ?? [];

    const { configMap, secret, mounts: fileMounts, volumes: fileVolumes, checksum: filesChecksum } = this.files(spec.name, configFiles, secretFiles, metadata, opts, spec.existingSecretFiles);

    const ports = spec.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.name }));
    if (spec.stateless && (spec.volumes ?? []).length > 0) throw new Error(`service ${spec.name}: a stateless service cannot have volumes`);
    if (spec.autoscale && !spec.stateless) throw new Error(`service ${spec.name}: only a stateless service can autoscale`);
    // A StatefulSet's pods get stable names through a headless Service; a Deployment's are reached through a ClusterIP one.
    const mainService = new k8s.core.v1.Service(
      spec.name,
      { metadata: metadata(spec.name), spec: spec.stateless ? { type: "ClusterIP", selector, ports } : { clusterIP: "None", publishNotReadyAddresses: true, selector, ports } },
      opts,
    );
    const aliasServices = (spec.aliases ?? []).map(
      (alias) => new k8s.core.v1.Service(alias, { metadata: metadata(alias), spec: { type: "ClusterIP", selector, ports } }, opts),
    );

    const hc = spec.healthCheck;
    const exec = { command: [...hc.command] };
    const volumeMounts = [...(spec.volumes ?? []).map((v) => ({ name: v.name, mountPath: v.mountPath })), ...fileMounts];
    const template = {
      // A changed config or secret file changes the template, so the pods roll.
      metadata: { labels, annotations: { "shopfds.io/files-checksum": filesChecksum } },
      spec: {
        ...podSecurity(spec.runAs),
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
            securityContext: CONTAINER_SECURITY,
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
        volumes: fileVolumes,
      },
    };
    const workloadOpts = {
      ...opts,
      protect: (this.args.protect ?? true) && (spec.volumes ?? []).length > 0,
      dependsOn: [...(opts.dependsOn as pulumi.Resource[]), mainService, ...(configMap ? [configMap] : []), ...(secret ? [secret] : [])],
    };

    const workload = spec.stateless
      ? new k8s.apps.v1.Deployment(
          spec.name,
          {
            metadata: metadata(spec.name),
            spec: {
              // Under an autoscaler the replica count is its to set: a `pulumi up` must not reset it.
              replicas: spec.autoscale ? undefined : spec.replicas,
              selector: { matchLabels: selector },
              strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
              template,
            },
          },
          workloadOpts,
        )
      : new k8s.apps.v1.StatefulSet(
          spec.name,
          {
            metadata: metadata(spec.name),
            spec: {
              serviceName: mainService.metadata.name,
              replicas: spec.replicas,
              selector: { matchLabels: selector },
              template,
              volumeClaimTemplates: (spec.volumes ?? []).map((v) => ({
                metadata: { name: v.name, labels },
                spec: { accessModes: ["ReadWriteOnce"], storageClassName: this.args.storageClass, resources: { requests: { storage: v.size } } },
              })),
            },
          },
          workloadOpts,
        );
    const hpa = spec.autoscale
      ? new k8s.autoscaling.v2.HorizontalPodAutoscaler(
          spec.name,
          {
            metadata: metadata(spec.name),
            spec: {
              scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: spec.name },
              minReplicas: spec.replicas,
              maxReplicas: spec.autoscale.maxReplicas,
              metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: spec.autoscale.cpuUtilizationPercent } } }],
            },
          },
          { ...opts, dependsOn: [workload] },
        )
      : undefined;

    // A voluntary disruption (a node drain) takes at most one instance at a time. A single instance
    // gets none: `maxUnavailable: 1` would protect nothing, and `minAvailable: 1` would block every drain.
    const pdb =
      spec.replicas >= 2
        ? new k8s.policy.v1.PodDisruptionBudget(spec.name, { metadata: metadata(spec.name), spec: { maxUnavailable: 1, selector: { matchLabels: selector } } }, opts)
        : undefined;

    const dns = (host: string) => `${host}.${ns}.svc.${this.args.clusterDomain ?? "cluster.local"}`;
    return {
      name: spec.name,
      resources: [workload, mainService, ...aliasServices, ...(pdb ? [pdb] : []), ...(hpa ? [hpa] : [])],
      internalHost: (i) => {
        if (spec.stateless) throw new Error(`service ${spec.name} is stateless (a Deployment): its instances have no stable names; use an alias`);
        return dns(`${spec.name}-${i}.${spec.name}`);
      },
      instanceEndpoints: (portName) => {
        if (spec.stateless) throw new Error(`service ${spec.name} is stateless (a Deployment): its instances have no stable names; use an alias`);
        const port = portNamed(spec, portName).port;
        return Array.from({ length: spec.replicas }, (_, i) => ({ host: dns(`${spec.name}-${i}.${spec.name}`), port }));
      },
      aliasEndpoint: (alias, portName) => {
        if (!(spec.aliases ?? []).includes(alias)) throw new Error(`service ${spec.name} has no alias "${alias}"`);
        return { host: dns(alias), port: portNamed(spec, portName).port };
      },
    };
  }
  runOnce(job: JobSpec, parent: pulumi.Resource): pulumi.Resource {
    const labels = { "app.kubernetes.io/name": job.name, "app.kubernetes.io/instance": job.instance, "app.kubernetes.io/component": job.role, "app.kubernetes.io/part-of": "shopfds" };
    const metadata = (name: string) => ({ name, namespace: this.args.namespace, labels });
    const opts: pulumi.CustomResourceOptions = { parent, provider: this.provider, dependsOn: [this.namespace, ...(job.dependsOn ?? []).flatMap((d) => d.resources)] };
    const { configMap, secret, mounts, volumes } = this.files(job.name, job.configFiles ?? [], job.secretFiles ?? [], metadata, opts, job.existingSecretFiles);
    return new k8s.batch.v1.Job(
      job.name,
      {
        metadata: metadata(job.name),
        spec: {
          // Retried with back-off while its dependencies come up; Pulumi waits for success.
          backoffLimit: 10,
          template: {
            metadata: { labels },
            spec: {
              restartPolicy: "OnFailure",
              ...podSecurity(job.runAs),
              containers: [
                {
                  name: job.role,
                  image: job.image,
                  securityContext: CONTAINER_SECURITY,
                  command: [...job.command],
                  env: Object.entries(job.env ?? {}).map(([name, value]) => ({ name, value })),
                  volumeMounts: mounts,
                  resources: { requests: { cpu: job.resources.cpu, memory: job.resources.memory }, limits: { cpu: doubleCpu(job.resources.cpu), memory: job.resources.memory } },
                },
              ],
              volumes,
            },
          },
        },
      },
      {
        ...opts,
        dependsOn: [...(opts.dependsOn as pulumi.Resource[]), ...(configMap ? [configMap] : []), ...(secret ? [secret] : [])],
        // An operator's cluster may take longer than Pulumi's default 10 minutes to answer (a new
        // PostgreSQL cluster clones its replicas first); the Job retries meanwhile (backoffLimit).
        customTimeouts: { create: "30m", update: "30m" },
      },
    );
  }

  /** A ConfigMap and a Secret for a workload's files, and the mounts that put each file at its path. */
  private files(
    name: string,
    configFiles: readonly ConfigFile[],
    secretFiles: readonly SecretFile[],
    metadata: (name: string) => { name: string; namespace: string; labels: Record<string, string> },
    opts: pulumi.CustomResourceOptions,
    existing: readonly ExistingSecretFiles[] = [],
  ) {
    const configMap =
      configFiles.length > 0
        ? new k8s.core.v1.ConfigMap(`${name}-config`, { metadata: metadata(`${name}-config`), data: Object.fromEntries(configFiles.map((f) => [fileKey(f.path), f.content])) }, opts)
        : undefined;
    const secret =
      secretFiles.length > 0
        ? new k8s.core.v1.Secret(
            `${name}-secrets`,
            { metadata: metadata(`${name}-secrets`), type: "Opaque", stringData: pulumi.secret(pulumi.all(Object.fromEntries(secretFiles.map((f) => [fileKey(f.path), f.content])))) },
            opts,
          )
        : undefined;
    const mounts = [
      ...configFiles.map((f) => ({ name: "config", mountPath: f.path, subPath: fileKey(f.path), readOnly: true })),
      ...secretFiles.map((f) => ({ name: "secrets", mountPath: f.path, subPath: fileKey(f.path), readOnly: true })),
      ...existing.map((e, i) => ({ name: `existing-secret-${i}`, mountPath: e.directory, readOnly: true })),
    ];
    const volumes = [
      ...(configMap
        ? [{ name: "config", configMap: { name: configMap.metadata.name, items: configFiles.map((f) => ({ key: fileKey(f.path), path: fileKey(f.path), mode: f.executable ? 0o755 : 0o644 })) } }]
        : []),
      ...(secret ? [{ name: "secrets", secret: { secretName: secret.metadata.name, defaultMode: 0o440 } }] : []),
      // Only the listed keys: an operator's CA Secret also holds the CA's private key.
      ...existing.map((e, i) => ({ name: `existing-secret-${i}`, secret: { secretName: e.secretName, defaultMode: 0o440, items: e.keys.map((key) => ({ key, path: key })) } })),
    ];
    // sha256 over every file's path and content (secret ones included: the digest of a generated
    // password tells nothing about it, and Pulumi keeps the annotation secret since it derives from one).
    const checksum = pulumi
      .all([...configFiles, ...secretFiles].map((f) => pulumi.all([f.path, f.content])))
      .apply((files) => createHash("sha256").update(JSON.stringify(files)).digest("hex"));
    return { configMap, secret, mounts, volumes, checksum };
  }
}
