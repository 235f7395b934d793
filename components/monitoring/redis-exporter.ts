/** The Redis exporter, the same on Docker and on Kubernetes (monitoring/docker.ts, monitoring/kubernetes.ts). */
import * as pulumi from "@pulumi/pulumi";
import type { DeployedService, Endpoint, ServiceSpec } from "../platform/types";

/** Where the exporter reads the nodes' passwords (a secret file). */
export const REDIS_EXPORTER_PASSWORDS = "/run/secrets/redis-passwords.json";

/**
 * The Redis exporter, one for the whole cluster (it discovers every node from the first); the
 * password of each node reaches it as a secret file, never on the command line.
 */
export function redisExporterSpec(
  name: string,
  instance: string,
  image: string,
  redis: { readonly nodes: readonly Endpoint[]; readonly password: pulumi.Input<string> },
  dependsOn?: readonly DeployedService[],
): ServiceSpec {
  const first = redis.nodes[0]!;
  return {
    name,
    role: "redis-exporter",
    instance,
    image,
    // The image's own user (oliver006/redis_exporter: `USER 59000:59000`).
    runAs: { uid: 59000, gid: 59000 },
    command: [`--redis.addr=redis://${first.host}:${first.port}`, "--is-cluster", `--redis.password-file=${REDIS_EXPORTER_PASSWORDS}`],
    secretFiles: [{ path: REDIS_EXPORTER_PASSWORDS, content: pulumi.output(redis.password).apply((pw) => JSON.stringify(Object.fromEntries(redis.nodes.map((n) => [`redis://${n.host}:${n.port}`, pw])))) }],
    ports: [{ name: "metrics", port: 9121 }],
    healthCheck: { command: ["/redis_exporter", "--version"], intervalSeconds: 30, timeoutSeconds: 5, retries: 3, startPeriodSeconds: 10 },
    resources: { cpu: "50m", memory: "64Mi" },
    replicas: 1,
    // Keeps nothing: a Deployment on Kubernetes.
    stateless: true,
    ...(dependsOn ? { dependsOn } : {}),
  };
}
