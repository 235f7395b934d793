/**
 * Replica discovery by DNS: one name with an address per replica (on Kubernetes, a headless Service
 * over CloudNativePG's replica pods), resolved again every `intervalMs`, so the router keeps a pool per
 * replica and measures each one's lag and replay position on the server it reads from. A load-balanced
 * name (the `-ro` Service) would let the lag sample and the read land on different pods.
 *
 * Written here rather than taken from a library: no maintained Node library resolves a name into a
 * changing set of PostgreSQL hosts (GitLab's load balancer does this in Ruby); node:dns does the DNS.
 */
import { promises as dns } from "node:dns";

export interface ReplicaDiscoveryOptions {
  /** A name with one A/AAAA record per replica (fully qualified: node:dns applies no search list). */
  readonly host: string;
  /** The port every replica listens on (DNS A records carry no port). */
  readonly port: number;
  /** The name the replicas' certificate carries (TLS is verified against it, not the pod address). */
  readonly serverName?: string;
  /** How often the name is resolved again. */
  readonly intervalMs: number;
  /** DNS servers (`ip` or `ip:port`) to ask instead of the system's (/etc/resolv.conf). */
  readonly dnsServers?: readonly string[];
}

/** What one resolution found: the addresses (sorted), none (the name has no replica now), or a failure. */
export type Resolution = { readonly kind: "addresses"; readonly addresses: readonly string[] } | { readonly kind: "none" } | { readonly kind: "failed"; readonly error: Error };

/** Answers that mean "no such records", as opposed to a DNS server that did not answer. */
const NO_RECORDS = new Set(["ENOTFOUND", "ENODATA"]);

export class ReplicaResolver {
  private readonly resolver: dns.Resolver;

  constructor(private readonly options: Pick<ReplicaDiscoveryOptions, "host" | "dnsServers">) {
    // A bounded answer: two tries of 1 s each, so a silent DNS server costs the timer 2 s, never a read.
    this.resolver = new dns.Resolver({ timeout: 1000, tries: 2 });
    if (options.dnsServers && options.dnsServers.length > 0) this.resolver.setServers([...options.dnsServers]);
  }

  async resolve(): Promise<Resolution> {
    const ask = (family: 4 | 6) =>
      (family === 4 ? this.resolver.resolve4(this.options.host) : this.resolver.resolve6(this.options.host)).then(
        (addresses): string[] | Error => addresses,
        (error: NodeJS.ErrnoException): string[] | Error => (NO_RECORDS.has(error.code ?? "") ? [] : error),
      );
    const [v4, v6] = await Promise.all([ask(4), ask(6)]);
    const failed = [v4, v6].find((r): r is Error => r instanceof Error);
    const addresses = [...(Array.isArray(v4) ? v4 : []), ...(Array.isArray(v6) ? v6 : [])];
    if (addresses.length > 0) return { kind: "addresses", addresses: [...new Set(addresses)].sort() };
    if (failed) return { kind: "failed", error: new Error(`replicaDiscovery: resolving ${this.options.host} failed (${(failed as NodeJS.ErrnoException).code ?? failed.message})`) };
    return { kind: "none" };
  }

  cancel(): void {
    this.resolver.cancel();
  }
}
