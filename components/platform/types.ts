/**
 * The platform layer's vocabulary. A component describes each of its services once, as a
 * `ServiceSpec`; a backend (Docker or Kubernetes) turns the description into resources. Components
 * therefore never import @pulumi/docker or @pulumi/kubernetes.
 */
import * as pulumi from "@pulumi/pulumi";

export interface ServicePort {
  /** A short name (`postgres`, `metrics`); a DNS-1123 label of at most 15 characters. */
  readonly name: string;
  /** The port inside the container. */
  readonly port: number;
  /**
   * Docker only: publish instance `i` on 127.0.0.1:`hostPort + i`, so tools on the developer's machine
   * can reach it. Kubernetes reaches services through cluster DNS and ignores this.
   */
  readonly hostPort?: number;
}

export interface ConfigFile {
  /** Absolute path inside the container. */
  readonly path: string;
  readonly content: pulumi.Input<string>;
  /** Executable script (mode 0755 rather than 0644). */
  readonly executable?: boolean;
}

export interface SecretFile {
  /** Absolute path inside the container; by convention under /run/secrets. */
  readonly path: string;
  /** Must be a secret Output: the backends keep it secret (Kubernetes Secret, encrypted Docker upload). */
  readonly content: pulumi.Input<string>;
}

/**
 * Kubernetes only: keys of a Secret that something else creates (an operator's CA), mounted as files in
 * a directory (`directory/<key>`). A directory rather than single files, so a rotated Secret reaches
 * the pod without a restart.
 */
export interface ExistingSecretFiles {
  readonly secretName: string;
  readonly keys: readonly string[];
  /** Absolute path of the directory, e.g. `/run/secrets/postgres-ca`. */
  readonly directory: string;
}

export interface ServiceVolume {
  /** Volume name, unique within the service. */
  readonly name: string;
  readonly mountPath: string;
  /** Requested size (Kubernetes PersistentVolumeClaim); Docker's local volumes are unsized. */
  readonly size: string;
}

export interface HealthCheck {
  /** Command run inside the container; exit 0 means healthy. */
  readonly command: readonly string[];
  readonly intervalSeconds: number;
  readonly timeoutSeconds: number;
  /** Consecutive failures before the service counts as unhealthy. */
  readonly retries: number;
  /** Grace period after start during which failures do not count. */
  readonly startPeriodSeconds: number;
}

export interface ServiceSpec {
  /** Base name: Docker containers are `${name}-${i}`, the Kubernetes StatefulSet is `${name}`. */
  readonly name: string;
  /** What the service is within its component (`primary`, `replica`); used in labels. */
  readonly role: string;
  /** The component instance it belongs to (the app.kubernetes.io/instance label). */
  readonly instance: string;
  readonly image: string;
  /** Replaces the image's entrypoint. */
  readonly entrypoint?: readonly string[];
  /** Replaces the image's command (arguments to the entrypoint). */
  readonly command?: readonly string[];
  /** Plain environment variables; never secrets (use `secretFiles`). */
  readonly env?: Readonly<Record<string, string>>;
  readonly configFiles?: readonly ConfigFile[];
  readonly secretFiles?: readonly SecretFile[];
  /** Kubernetes only (the Docker backend refuses them). */
  readonly existingSecretFiles?: readonly ExistingSecretFiles[];
  readonly ports: readonly ServicePort[];
  readonly volumes?: readonly ServiceVolume[];
  readonly healthCheck: HealthCheck;
  /** CPU and memory requested; the limit is twice the CPU request and equal to the memory request. */
  readonly resources: { readonly cpu: string; readonly memory: string };
  /** Number of identical instances (each with its own volumes); with `autoscale`, the least. */
  readonly replicas: number;
  /**
   * No volumes and no per-instance identity (a service, workers, an exporter): on Kubernetes a
   * Deployment behind a ClusterIP Service rather than a StatefulSet; its instances have no stable
   * names, so `internalHost`/`instanceEndpoints` are refused (use an alias). Docker ignores it.
   */
  readonly stateless?: boolean;
  /** Kubernetes, stateless only: a HorizontalPodAutoscaler from `replicas` up to `maxReplicas` on CPU. */
  readonly autoscale?: { readonly maxReplicas: number; readonly cpuUtilizationPercent: number };
  /**
   * Numeric user and group the process runs as (and that owns the volumes). Required: the image's own
   * default user is invisible to the program, and whether the process can read its secret files (the
   * kubelet's fsGroup rules) or passes Pod Security "restricted" (non-root) depends on it.
   */
  readonly runAs: { readonly uid: number; readonly gid: number };
  /**
   * Extra stable names that resolve to all instances of this service: a Docker network alias, and on
   * Kubernetes a ClusterIP Service of that name selecting the service's pods.
   */
  readonly aliases?: readonly string[];
  /** Other services that must be created first. */
  readonly dependsOn?: readonly DeployedService[];
  /**
   * Docker only (the Kubernetes backend refuses them): directories or sockets of the Docker engine's
   * host, mounted read-only. For the log shipper, which reads the engine's container logs.
   */
  readonly hostPaths?: readonly HostPath[];
  /**
   * Whether a log shipper on the same engine ships this service's output (default true). Off for the
   * logging stack itself and the shipper, whose own lines would feed back into it.
   */
  readonly shipLogs?: boolean;
}

/** A path of the Docker engine's host, mounted read-only at `mountPath`. */
export interface HostPath {
  readonly hostPath: string;
  readonly mountPath: string;
}

/** A one-shot task (cluster creation, migrations): runs to completion once its dependencies are up. */
export interface JobSpec {
  /** Docker: the container's name; Kubernetes: the Job's name. */
  readonly name: string;
  readonly role: string;
  readonly instance: string;
  readonly image: string;
  /** The command (replaces the image's entrypoint and command). */
  readonly command: readonly string[];
  /** Plain environment variables; never secrets (use `secretFiles`). */
  readonly env?: Readonly<Record<string, string>>;
  readonly configFiles?: readonly ConfigFile[];
  readonly secretFiles?: readonly SecretFile[];
  /** As ServiceSpec.existingSecretFiles. */
  readonly existingSecretFiles?: readonly ExistingSecretFiles[];
  readonly resources: { readonly cpu: string; readonly memory: string };
  /** As ServiceSpec.runAs. */
  readonly runAs: { readonly uid: number; readonly gid: number };
  /** Services that must be up (healthy, on Docker) before the job starts. */
  readonly dependsOn?: readonly DeployedService[];
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface DeployedService {
  readonly name: string;
  /** The resources a dependant must wait for. */
  readonly resources: readonly pulumi.Resource[];
  /** Where callers of the stack reach each instance on the named port. */
  instanceEndpoints(portName: string): Endpoint[];
  /** Where instances of other services reach instance `i` (inside the network / cluster). */
  internalHost(i: number): string;
  /** Where callers reach the stable alias (see ServiceSpec.aliases). */
  aliasEndpoint(alias: string, portName: string): Endpoint;
}

export interface Platform {
  readonly kind: "docker" | "kubernetes";
  /** CIDR ranges that services of this platform connect from (for pg_hba.conf and the like). */
  readonly clientCidrs: readonly string[];
  /** Creates the resources of one service, as children of `parent`. */
  deploy(spec: ServiceSpec, parent: pulumi.Resource): DeployedService;
  /**
   * Runs a one-shot job and returns the resource that completes when it has succeeded (Docker: an
   * attached container; Kubernetes: a Job, which Pulumi awaits), for dependants to wait on.
   */
  runOnce(job: JobSpec, parent: pulumi.Resource): pulumi.Resource;
}

/**
 * A dependency that is only resources to wait for (an operator's custom resource), not a service with
 * addresses of its own: asking it for an address is a programming error.
 */
export function resourcesToWaitFor(name: string, resources: readonly pulumi.Resource[]): DeployedService {
  const none = (): never => {
    throw new Error(`${name} is a dependency to wait for, not a service with addresses`);
  };
  return { name, resources, instanceEndpoints: none, internalHost: none, aliasEndpoint: none };
}

/** Looks up a port by name, failing loudly on a typo rather than returning undefined. */
export function portNamed(spec: Pick<ServiceSpec, "name" | "ports">, portName: string): ServicePort {
  const port = spec.ports.find((p) => p.name === portName);
  if (!port) throw new Error(`service ${spec.name} has no port named "${portName}" (it has: ${spec.ports.map((p) => p.name).join(", ")})`);
  return port;
}

/** The service image's user (`USER node` in the Dockerfile): the service, workers, scheduler, migrations, sinks. */
export const SERVICE_IMAGE_USER = { uid: 1000, gid: 1000 } as const;
