/**
 * TLS to PostgreSQL (`postgres.tls`): verified against the contract's CA (runtime/tls.ts). Kubernetes
 * stacks mount CloudNativePG's CA certificate there.
 */
import type { ConnectionOptions } from "node:tls";
import { type ServerTls, verifiedTls } from "../tls";

export type PostgresTls = ServerTls;

/** The `ssl` option of a pg Client/Pool: verified TLS with the contract's CA, or none. */
export function pgSsl(tls: PostgresTls | undefined): ConnectionOptions | undefined {
  return verifiedTls("postgres.tls", tls);
}
