/** The Redis exporter, the same on Docker and on Kubernetes (monitoring/docker.ts, monitoring/kubernetes.ts). */
import * as pulumi from "@pulumi/pulumi";
import type { DeployedService, Endpoint, ServiceSpec } from "../platform/types";

/** Where the exporter reads the nodes' passwords (a secret file). */
export const REDIS_EXPORTER_PASSWORDS = "/run/secrets/redis-passwords.json";
/** Kubernetes with TLS: the directory of the CA that signs the nodes' certificates. */
export const REDIS_EXPORTER_CA_DIR = "/run/secrets/redis-ca";

/**
 * Each node as the exporter names it: the key of its password in the password file and the `target`
 * Prometheus scrapes it by (`/scrape?target=…`), so the two always match (v1.50.0 exporter/http.go
 * scrapeHandler: the target, without user info, is the password map's key, exporter/redis.go).
 */
export function redisNodeUris(nodes: readonly Endpoint[], tls: boolean): string[] {
  return nodes.map((n) => `${tls ? "rediss" : "redis"}://${n.host}:${n.port}`);
}

/**
 * The Redis exporter, one for the whole cluster: Prometheus scrapes every node through it
 * (`/scrape?target=<node>`, the multi-target pattern; its own `/metrics` reports only `--redis.addr`,
 * whatever `--is-cluster` says: that flag only spreads key checks over the cluster, v1.50.0
 * exporter/exporter.go). The
 * password of each node reaches it as a secret file, never on the command line. With `tls` (the Secret
 * whose `ca.crt` signs the nodes' certificates) it speaks TLS (a `rediss://` address, v1.50.0's
 * exporter/redis.go) and verifies the nodes against that CA (`--tls-ca-cert-file`, main.go and
 * exporter/tls.go: the RootCAs of its TLS config).
 */
export function redisExporterSpec(
  name: string,
  instance: string,
  image: string,
  redis: { readonly nodes: readonly Endpoint[]; readonly password: pulumi.Input<string> },
  dependsOn?: readonly DeployedService[],
  tls?: { readonly caSecretName: string },
): ServiceSpec {
  const first = redis.nodes[0]!;
  const scheme = tls ? "rediss" : "redis";
  return {
    name,
    role: "redis-exporter",
    instance,
    image,
    // The image's own user (oliver006/redis_exporter: `USER 59000:59000`).
    runAs: { uid: 59000, gid: 59000 },
    command: [
      `--redis.addr=${scheme}://${first.host}:${first.port}`,
      "--is-cluster",
      `--redis.password-file=${REDIS_EXPORTER_PASSWORDS}`,
      ...(tls ? [`--tls-ca-cert-file=${REDIS_EXPORTER_CA_DIR}/ca.crt`] : []),
    ],
    secretFiles: [{ path: REDIS_EXPORTER_PASSWORDS, content: pulumi.output(redis.password).apply((pw) => JSON.stringify(Object.fromEntries(redisNodeUris(redis.nodes, tls !== undefined).map((uri) => [uri, pw])))) }],
    ...(tls ? { existingSecretFiles: [{ secretName: tls.caSecretName, keys: ["ca.crt"], directory: REDIS_EXPORTER_CA_DIR }] } : {}),
    ports: [{ name: "metrics", port: 9121 }],
    healthCheck: { command: ["/redis_exporter", "--version"], intervalSeconds: 30, timeoutSeconds: 5, retries: 3, startPeriodSeconds: 10 },
    resources: { cpu: "50m", memory: "64Mi" },
    replicas: 1,
    // Keeps nothing: a Deployment on Kubernetes.
    stateless: true,
    ...(dependsOn ? { dependsOn } : {}),
  };
}
