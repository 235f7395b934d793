/**
 * Docker backend of the platform layer: one bridge network, a named volume per instance and volume,
 * and a container per instance with its health check, restart policy, limits, config and secret files.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { dockerCpus, quantityToMiB } from "./quantity";
import { ConfigFile, DeployedService, Endpoint, JobSpec, Platform, portNamed, SecretFile, ServiceSpec } from "./types";

/**
 * Config files as they are (0644, scripts 0755), secret files as secret uploads (Pulumi encrypts them in
 * the state) with mode 0440. The provider writes every upload as root:root, and cannot change that; so a
 * container with secret files runs with the root group as a supplementary group (SECRET_READER_GROUP),
 * which lets its user read them while any other user of the container cannot.
 */
function uploads(configFiles: readonly ConfigFile[] = [], secretFiles: readonly SecretFile[] = []) {
  return [
    ...configFiles.map((f) => ({ file: f.path, content: f.content, permissions: f.executable ? "0755" : "0644" })),
    ...secretFiles.map((f) => ({ file: f.path, content: pulumi.secret(f.content), permissions: "0440" })),
  ];
}

/**
 * The labels of every container of a Docker stack. Without dots: Filebeat's Docker metadata turns dots
 * in label names into underscores, and its conditions name the labels as it stores them.
 */
export const DOCKER_LABELS = { stack: "shopfds-stack", role: "shopfds-role", logs: "shopfds-logs" } as const;

/** The group that owns uploaded files (root's: the provider writes them as root:root). */
export const SECRET_READER_GROUP = "0";
const secretReaders = (secretFiles: readonly SecretFile[] = []) => (secretFiles.length > 0 ? { groupAdds: [SECRET_READER_GROUP] } : {});

export interface DockerPlatformArgs {
  /** Subnet of the stack's bridge network; services accept connections from it. */
  readonly subnet: string;
  /** The Docker engine every resource goes to (an explicit provider, never whatever DOCKER_HOST says). */
  readonly host: string;
}

export class DockerPlatform extends pulumi.ComponentResource implements Platform {
  readonly kind = "docker" as const;
  declare readonly network: docker.Network;
  /** Every Docker resource of the stack goes through this provider. */
  declare readonly provider: docker.Provider;
  declare readonly clientCidrs: readonly string[];
  private readonly images = new Map<string, docker.RemoteImage>();
  private readonly baseName: string;

  constructor(name: string, args: DockerPlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:platform:Docker", name, {}, opts);
    this.baseName = name;
    this.clientCidrs = [args.subnet];
    this.provider = new docker.Provider(`${name}-docker`, { host: args.host }, { parent: this });
    this.network = new docker.Network(
      `${name}-net`,
      { name: `${name}-net`, driver: "bridge", ipamConfigs: [{ subnet: args.subnet }] },
      { parent: this, provider: this.provider },
    );
    this.registerOutputs({ network: this.network.name });
  }

  deploy(spec: ServiceSpec, parent: pulumi.Resource): DeployedService {
    refuseExistingSecrets(spec);
    const image = this.image(spec.image);
    const resources: pulumi.Resource[] = [];
    for (let i = 0; i < spec.replicas; i++) {
      const instance = `${spec.name}-${i}`;
      const volumes = (spec.volumes ?? []).map((v) => ({
        volume: new docker.Volume(`${instance}-${v.name}`, { name: `${instance}-${v.name}` }, { parent, provider: this.provider }),
        mountPath: v.mountPath,
      }));
      const files = uploads(spec.configFiles, spec.secretFiles);
      const hc = spec.healthCheck;
      resources.push(
        new docker.Container(
          instance,
          {
            name: instance,
            hostname: instance,
            image: image.imageId,
            entrypoints: spec.entrypoint ? [...spec.entrypoint] : undefined,
            command: spec.command ? [...spec.command] : undefined,
            envs: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
            uploads: files,
            networksAdvanced: [{ name: this.network.name, aliases: [...(spec.aliases ?? [])] }],
            ports: spec.ports
              .filter((p) => p.hostPort !== undefined)
              .map((p) => ({ internal: p.port, external: (p.hostPort as number) + i, ip: "127.0.0.1" })),
            volumes: [
              ...volumes.map((v) => ({ volumeName: v.volume.name, containerPath: v.mountPath })),
              ...(spec.hostPaths ?? []).map((h) => ({ hostPath: h.hostPath, containerPath: h.mountPath, readOnly: true })),
            ],
            labels: this.labels(spec.role, spec.shipLogs !== false),
            healthcheck: {
              tests: ["CMD", ...hc.command],
              interval: `${hc.intervalSeconds}s`,
              timeout: `${hc.timeoutSeconds}s`,
              retries: hc.retries,
              startPeriod: `${hc.startPeriodSeconds}s`,
            },
            restart: "unless-stopped",
            user: `${spec.runAs.uid}:${spec.runAs.gid}`,
            ...secretReaders(spec.secretFiles),
            memory: quantityToMiB(spec.resources.memory),
            cpus: dockerCpus(spec.resources.cpu),
            logDriver: "json-file",
            logOpts: { "max-size": "10m", "max-file": "3" },
            // Wait for the health check, so dependants start against a ready service.
            wait: true,
            waitTimeout: hc.startPeriodSeconds + hc.intervalSeconds * (hc.retries + 1),
          },
          { parent, provider: this.provider, dependsOn: [...(spec.dependsOn ?? []).flatMap((d) => d.resources), ...volumes.map((v) => v.volume)] },
        ),
      );
    }
    return {
      name: spec.name,
      resources,
      internalHost: (i) => `${spec.name}-${i}`,
      instanceEndpoints: (portName) => {
        const port = portNamed(spec, portName);
        return Array.from({ length: spec.replicas }, (_, i): Endpoint =>
          port.hostPort !== undefined ? { host: "127.0.0.1", port: port.hostPort + i } : { host: `${spec.name}-${i}`, port: port.port },
        );
      },
      // A Docker network alias is not reachable from the host; callers on the host use instance 0's
      // published port, which is the same server when the service has one instance.
      aliasEndpoint: (alias, portName) => {
        if (!(spec.aliases ?? []).includes(alias)) throw new Error(`service ${spec.name} has no alias "${alias}"`);
        const port = portNamed(spec, portName);
        return port.hostPort !== undefined && spec.replicas === 1 ? { host: "127.0.0.1", port: port.hostPort } : { host: alias, port: port.port };
      },
    };
  }

  /**
   * The job's container runs to completion (attach); the provider records its exit code and output but
   * does not fail on a non-zero exit. So the resource returned is a marker that exists only once the job
   * has exited 0: a RandomId whose `keepers` carry the checked exit code, so it is not created before
   * the check, and a failed check fails `pulumi up` with the job's output and leaves every dependant
   * (which depends on the marker) uncreated.
   */
  runOnce(job: JobSpec, parent: pulumi.Resource): pulumi.Resource {
    refuseExistingSecrets(job);
    const container = new docker.Container(
      job.name,
      {
        name: job.name,
        hostname: job.name,
        image: this.image(job.image).imageId,
        entrypoints: [...job.command],
        envs: Object.entries(job.env ?? {}).map(([k, v]) => `${k}=${v}`),
        uploads: uploads(job.configFiles, job.secretFiles),
        networksAdvanced: [{ name: this.network.name }],
        labels: this.labels(job.role, true),
        user: `${job.runAs.uid}:${job.runAs.gid}`,
        ...secretReaders(job.secretFiles),
        memory: quantityToMiB(job.resources.memory),
        cpus: dockerCpus(job.resources.cpu),
        // Run to completion: Pulumi waits for the exit (attach) and the container is not restarted.
        restart: "no",
        mustRun: false,
        attach: true,
        logs: true,
      },
      { parent, provider: this.provider, dependsOn: (job.dependsOn ?? []).flatMap((d) => d.resources) },
    );
    const succeeded = pulumi.all([container.exitCode, container.containerLogs]).apply(([code, logs]) => {
      if (code !== 0) throw new JobFailedError(job.name, code, logs ?? "");
      return "0";
    });
    return new random.RandomId(`${job.name}-succeeded`, { byteLength: 4, keepers: { exitCode: succeeded } }, { parent, dependsOn: [container] });
  }

  /**
   * Every container says which stack it belongs to and whether its output is shipped (DOCKER_LABELS):
   * the dev log shipper (Filebeat's Docker autodiscovery) selects containers by these labels.
   */
  private labels(role: string, shipLogs: boolean) {
    return [
      { label: DOCKER_LABELS.stack, value: this.baseName },
      { label: DOCKER_LABELS.role, value: role },
      { label: DOCKER_LABELS.logs, value: shipLogs ? "ship" : "skip" },
    ];
  }

  private image(ref: string): docker.RemoteImage {
    let image = this.images.get(ref);
    if (!image) {
      const slug = ref.replace(/[^A-Za-z0-9]+/g, "-");
      image = new docker.RemoteImage(`${this.baseName}-image-${slug}`, { name: ref, keepLocally: true }, { parent: this, provider: this.provider });
      this.images.set(ref, image);
    }
    return image;
  }
}

/** A one-shot job exited non-zero: its name, exit code and the end of its output. */
export class JobFailedError extends Error {
  constructor(readonly job: string, readonly exitCode: number | undefined, output: string) {
    const tail = output.trim().split("\n").slice(-20).join("\n");
    super(`one-shot job ${job} exited with ${exitCode ?? "no exit code"}; its last output:\n${tail || "(none)"}`);
    this.name = "JobFailedError";
  }
}

/** Secrets created by a Kubernetes operator have no Docker counterpart. */
function refuseExistingSecrets(spec: Pick<ServiceSpec, "name" | "existingSecretFiles">): void {
  if ((spec.existingSecretFiles ?? []).length > 0) throw new Error(`${spec.name}: existingSecretFiles are a Kubernetes feature; the Docker backend has no Secrets to mount`);
}
