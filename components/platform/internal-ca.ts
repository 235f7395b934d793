/**
 * The stack's own certificate authority on Kubernetes, kept by cert-manager (which every Kubernetes
 * stack installs: the RabbitMQ operator's webhooks need it): a self-signed Issuer signs one CA
 * Certificate, and a CA Issuer over that CA's Secret signs the server certificates of the data services
 * that cannot get one from their operator (Redis, RabbitMQ; CloudNativePG and ECK keep CAs of their own).
 *
 * Workloads verify those servers against `ca.crt` of the CA's Secret, mounted by that key only (the
 * Secret also holds the CA's private key). cert-manager writes `tls.crt`, `tls.key` and `ca.crt` into
 * each server certificate's Secret; the RabbitMQ operator reads `tls.crt` and `tls.key` from it
 * (tests/fixtures/upstream/facts.yaml, rabbitmq-operator-tls).
 *
 * Lifetimes: the CA 10 years, renewed a year ahead; server certificates a year, renewed 30 days ahead.
 * Redis reads its certificate at start only (a renewed one takes effect on the next rolling restart:
 * README, "TLS inside the cluster"); the runtime reads the CA file when a client is built.
 */
import * as pulumi from "@pulumi/pulumi";
import type { KubernetesPlatform } from "./kubernetes";

export interface InternalCaArgs {
  readonly platform: KubernetesPlatform;
  readonly instance: string;
  /** cert-manager's installation (its CRDs and webhook must exist first). */
  readonly certManager: readonly pulumi.Resource[];
}

/** A server certificate the CA issued: the Secret cert-manager writes it to, and the Certificate to wait for. */
export interface IssuedCertificate {
  readonly secretName: string;
  readonly certificate: pulumi.Resource;
}

const CERT_MANAGER = "cert-manager.io/v1";
const SERVER_LIFETIME = { duration: "8760h", renewBefore: "720h" } as const;
const CA_LIFETIME = { duration: "87600h", renewBefore: "8760h" } as const;

export class InternalCa extends pulumi.ComponentResource {
  /** The Secret holding the CA (`ca.crt`, which workloads mount, and the CA's key, which they must not). */
  declare readonly caSecretName: string;
  declare readonly issuerName: string;
  private readonly args: InternalCaArgs;
  private readonly issuer: pulumi.Resource;

  constructor(name: string, args: InternalCaArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:k8s:InternalCa", name, {}, opts);
    this.args = args;
    const { platform, instance } = args;
    const cr = (kind: string, crName: string, spec: Record<string, unknown>, dependsOn: pulumi.Resource[]) =>
      platform.customResource(this, { apiVersion: CERT_MANAGER, kind }, crName, spec, { instance, dependsOn: [...args.certManager, ...dependsOn] });
    this.caSecretName = name;
    this.issuerName = `${name}-issuer`;
    const selfSigned = cr("Issuer", `${name}-selfsigned`, { selfSigned: {} }, []);
    const ca = cr(
      "Certificate",
      name,
      {
        isCA: true,
        commonName: `${name} (ShopFDS ${platform.namespaceName})`,
        secretName: this.caSecretName,
        privateKey: { algorithm: "ECDSA", size: 256 },
        ...CA_LIFETIME,
        issuerRef: { group: "cert-manager.io", kind: "Issuer", name: `${name}-selfsigned` },
      },
      [selfSigned],
    );
    this.issuer = cr("Issuer", this.issuerName, { ca: { secretName: this.caSecretName } }, [ca]);
    this.registerOutputs({ caSecretName: this.caSecretName });
  }

  /**
   * A server certificate for `dnsNames` (the names clients connect to: a Service's forms, or a wildcard
   * over a headless Service's pods), into the Secret `name`.
   */
  serverCertificate(parent: pulumi.Resource, name: string, dnsNames: readonly string[]): IssuedCertificate {
    if (dnsNames.length === 0) throw new Error(`${name}: dnsNames: must name at least one host the clients connect to`);
    const certificate = this.args.platform.customResource(
      parent,
      { apiVersion: CERT_MANAGER, kind: "Certificate" },
      name,
      {
        secretName: name,
        dnsNames: [...dnsNames],
        usages: ["server auth", "client auth", "digital signature", "key encipherment"],
        privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
        ...SERVER_LIFETIME,
        issuerRef: { group: "cert-manager.io", kind: "Issuer", name: this.issuerName },
      },
      { instance: this.args.instance, dependsOn: [...this.args.certManager, this.issuer] },
    );
    return { secretName: name, certificate };
  }

  /** The names of a Service as clients may write them: `name`, `name.ns`, `name.ns.svc`, `name.ns.svc.<domain>`. */
  serviceNames(service: string): string[] {
    const { platform } = this.args;
    return [service, `${service}.${platform.namespaceName}`, platform.serviceHost(service), platform.serviceFqdn(service)];
  }

  /** Every pod behind a headless Service: `*.<service>.<ns>.svc` and its fully qualified form. */
  podNames(headless: string): string[] {
    const { platform } = this.args;
    return [`*.${platform.serviceHost(headless)}`, `*.${platform.serviceFqdn(headless)}`];
  }
}
