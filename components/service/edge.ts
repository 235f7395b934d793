/**
 * The reference service at the edge of a Kubernetes stack: what the cluster's ingress-nginx controller
 * and cert-manager (both the cluster's, like its storage class) need to serve it on its public host.
 *
 * - an ACME `Issuer` of the stack's own (Let's Encrypt's staging directory for staging, its production
 *   one for prod: `shopfds:edge.acmeServer`), solving HTTP-01 through the controller's IngressClass;
 * - a `Certificate` for the host of `service.publicUrl`, into the Secret the Ingresses name;
 * - three Ingresses on that host, merged by the controller: `/` and the two routes with limits of their
 *   own, in ingress-nginx's terms (per client IP, per controller replica: `limit-rpm` on POST /login,
 *   `limit-rps` on /orders, with `limit-burst-multiplier`); TLS only (`force-ssl-redirect`); bodies
 *   capped at the service's own 64 KB. HSTS and the other security headers come from the service
 *   itself (service/http/app.ts), on every answer, so they hold whichever controller is in front.
 *
 * Which pods the controller may reach (the service's HTTP port, cert-manager's HTTP-01 solver) is
 * components/platform/network-policies.ts's.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import type { edgeConfigSchema } from "../config";
import type { KubernetesPlatform } from "../platform/kubernetes";

export type EdgeSettings = z.infer<typeof edgeConfigSchema>;

export interface ServiceEdgeArgs {
  readonly platform: KubernetesPlatform;
  /** The public URL (https://host[/…]): its host is the Ingresses' and the certificate's. */
  readonly publicUrl: string;
  /** The service's ClusterIP Service and port. */
  readonly serviceName: pulumi.Input<string>;
  readonly port: number;
  /** The largest body the service takes (the edge refuses a larger one before it reaches a pod). */
  readonly maxBodyBytes: number;
  readonly settings: EdgeSettings;
  readonly instance: string;
  /** cert-manager's installation, when the program installs it (its CRDs must exist first). */
  readonly certManager?: readonly pulumi.Resource[];
}

/** ingress-nginx's annotation prefix (its default `--annotations-prefix`). */
const NGINX = "nginx.ingress.kubernetes.io";

/** The routes with limits of their own; `/` takes the rest without one. */
export function edgeRoutes(s: EdgeSettings): { suffix: string; path: string; pathType: "Prefix" | "Exact"; annotations: Record<string, string> }[] {
  const burst = { [`${NGINX}/limit-burst-multiplier`]: String(s.burstMultiplier) };
  return [
    { suffix: "", path: "/", pathType: "Prefix", annotations: {} },
    { suffix: "-login", path: "/login", pathType: "Exact", annotations: { [`${NGINX}/limit-rpm`]: String(s.loginPerMinute), ...burst } },
    { suffix: "-orders", path: "/orders", pathType: "Exact", annotations: { [`${NGINX}/limit-rps`]: String(s.ordersPerSecond), ...burst } },
  ];
}

export class ServiceEdge extends pulumi.ComponentResource {
  /** https://<host>: where people reach the service. */
  declare readonly url: string;
  declare readonly host: string;
  declare readonly tlsSecretName: string;

  constructor(name: string, args: ServiceEdgeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:service:Edge", name, {}, opts);
    const { platform, settings: s } = args;
    const url = new URL(args.publicUrl);
    if (url.protocol !== "https:") throw new Error(`service.publicUrl: must be an https:// URL for the edge (got "${args.publicUrl}")`);
    this.host = url.hostname;
    this.url = `https://${this.host}`;
    this.tlsSecretName = `${name}-tls`;

    const issuer = platform.customResource(
      this,
      { apiVersion: "cert-manager.io/v1", kind: "Issuer" },
      `${name}-issuer`,
      {
        acme: {
          server: s.acmeServer,
          email: s.acmeEmail,
          // The ACME account's key, created by cert-manager on first use.
          privateKeySecretRef: { name: `${name}-acme-account` },
          solvers: [{ http01: { ingress: { ingressClassName: s.ingressClassName } } }],
        },
      },
      { instance: args.instance, dependsOn: args.certManager ?? [] },
    );
    const certificate = platform.customResource(
      this,
      { apiVersion: "cert-manager.io/v1", kind: "Certificate" },
      `${name}-certificate`,
      {
        secretName: this.tlsSecretName,
        dnsNames: [this.host],
        issuerRef: { group: "cert-manager.io", kind: "Issuer", name: `${name}-issuer` },
        privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
        // Let's Encrypt's 90 days, renewed with a month to spare.
        renewBefore: "720h",
      },
      { instance: args.instance, dependsOn: [issuer, ...(args.certManager ?? [])] },
    );

    const common = {
      [`${NGINX}/force-ssl-redirect`]: "true",
      [`${NGINX}/proxy-body-size`]: `${Math.ceil(args.maxBodyBytes / 1024)}k`,
    };
    for (const route of edgeRoutes(s)) {
      const ingressName = `${name}${route.suffix}`;
      new k8s.networking.v1.Ingress(
        ingressName,
        {
          metadata: {
            name: ingressName,
            namespace: platform.namespaceName,
            labels: { "app.kubernetes.io/instance": args.instance, "app.kubernetes.io/part-of": "shopfds" },
            annotations: { ...common, ...route.annotations },
          },
          spec: {
            ingressClassName: s.ingressClassName,
            tls: [{ hosts: [this.host], secretName: this.tlsSecretName }],
            rules: [{ host: this.host, http: { paths: [{ path: route.path, pathType: route.pathType, backend: { service: { name: args.serviceName, port: { number: args.port } } } }] } }],
          },
        },
        platform.objectOptions(this, [certificate]),
      );
    }
    this.registerOutputs({ url: this.url });
  }
}
