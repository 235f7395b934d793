/**
 * TLS to PostgreSQL, as the outputs contract describes it (`postgres.tls`): the server's certificate is
 * verified against the CA in `caFile` and must name the host connected to (Node's checks: a stolen
 * password cannot be replayed to a server that merely claims the name). Kubernetes stacks mount
 * CloudNativePG's CA certificate there; the Docker and local stacks run without TLS on a private network.
 */
import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";

export interface PostgresTls {
  /** PEM file of the CA that signs the server's certificate. */
  readonly caFile: string;
}

/** The `ssl` option of a pg Client/Pool: verified TLS with the contract's CA, or none. */
export function pgSsl(tls: PostgresTls | undefined): ConnectionOptions | undefined {
  if (!tls) return undefined;
  let ca: string;
  try {
    ca = readFileSync(tls.caFile, "utf8");
  } catch (e) {
    throw new Error(`postgres.tls.caFile: cannot read ${tls.caFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new Error(`postgres.tls.caFile: ${tls.caFile} holds no PEM certificate`);
  return { ca, rejectUnauthorized: true };
}
