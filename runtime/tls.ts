/**
 * Verified TLS to a server, as the outputs contract describes it (`postgres.tls`, `redis.tls`,
 * `rabbitmq.tls`): the server's certificate must chain to the CA in `caFile` and name the host connected
 * to, or `serverName` when one is given (Redis Cluster nodes announce addresses; their certificate
 * names the service). Node's own checks do the work: a stolen password cannot be replayed to a server
 * that merely claims the name. Kubernetes stacks mount the issuing CA there (CloudNativePG's, or the
 * stack's cert-manager CA for Redis and RabbitMQ); the Docker and local stacks run without TLS on a
 * private network unless a test asks for it.
 */
import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";

export interface ServerTls {
  /** PEM file of the CA that signs the server's certificate. */
  readonly caFile: string;
  /** The name the certificate must carry, when it is not the host connected to. */
  readonly serverName?: string;
}

/** Node TLS options that verify the server against the contract's CA, or undefined (no TLS). `field` names the setting in errors. */
export function verifiedTls(field: string, tls: ServerTls | undefined): ConnectionOptions | undefined {
  if (!tls) return undefined;
  let ca: string;
  try {
    ca = readFileSync(tls.caFile, "utf8");
  } catch (e) {
    throw new Error(`${field}.caFile: cannot read ${tls.caFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new Error(`${field}.caFile: ${tls.caFile} holds no PEM certificate`);
  return { ca, rejectUnauthorized: true, ...(tls.serverName ? { servername: tls.serverName } : {}) };
}
