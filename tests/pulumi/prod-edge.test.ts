/**
 * Layer 2: the service at the edge on the Kubernetes stacks (components/service/edge.ts): the Issuer,
 * the Certificate and the Ingresses for the cluster's ingress-nginx, what each names of the others, the
 * limits in the controller's terms, the URL output. The objects are validated against the Kubernetes
 * schema and cert-manager's CRDs with everything else in prod-k8s-validity.test.ts.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parseStackConfig } from "../../components/config";
import { SERVICE_MAX_BODY_BYTES } from "../../components/service/ShopService";
import { MAX_BODY } from "../../service/http/app";
import { validateCustomResource } from "./crd-schema";
import { MockHarness, resolve, stackSettings } from "./harness";

const h = new MockHarness();
let program: typeof import("../../index");
const INGRESS = "kubernetes:networking.k8s.io/v1:Ingress";
const CR = (kind: string) => `kubernetes:cert-manager.io/v1:${kind}`;
const NGINX = "nginx.ingress.kubernetes.io";

before(async () => {
  program = await h.runProgram("prod");
});

describe("prod stack: the edge", () => {
  it("an ACME Issuer of the stack's own (Let's Encrypt's production directory), HTTP-01 through the controller's class", () => {
    const issuer = h.named(CR("Issuer"), "shopfds-prod-edge-issuer").inputs;
    assert.deepEqual(validateCustomResource("cert-manager.io/v1", "Issuer", issuer), []);
    assert.equal(issuer.metadata.namespace, "shopfds-prod");
    assert.deepEqual(issuer.spec.acme, {
      server: "https://acme-v02.api.letsencrypt.org/directory",
      email: "platform@shopfds.example",
      privateKeySecretRef: { name: "shopfds-prod-edge-acme-account" },
      solvers: [{ http01: { ingress: { ingressClassName: "nginx" } } }],
    });
  });

  it("a Certificate for the public host, from that Issuer, into the Secret every Ingress names", () => {
    const cert = h.named(CR("Certificate"), "shopfds-prod-edge-certificate").inputs;
    assert.deepEqual(validateCustomResource("cert-manager.io/v1", "Certificate", cert), []);
    assert.deepEqual(cert.spec.dnsNames, ["shop.shopfds.example"]);
    assert.deepEqual(cert.spec.issuerRef, { group: "cert-manager.io", kind: "Issuer", name: "shopfds-prod-edge-issuer" });
    const ingresses = h.ofType(INGRESS);
    assert.deepEqual(ingresses.map((i) => i.inputs.metadata.name).sort(), ["shopfds-prod-edge", "shopfds-prod-edge-login", "shopfds-prod-edge-orders"]);
    for (const i of ingresses) {
      assert.deepEqual(i.inputs.spec.tls, [{ hosts: ["shop.shopfds.example"], secretName: cert.spec.secretName }], i.name);
      assert.equal(i.inputs.spec.ingressClassName, "nginx");
      assert.equal(i.inputs.metadata.annotations[`${NGINX}/force-ssl-redirect`], "true", "TLS only");
      assert.equal(i.inputs.metadata.annotations[`${NGINX}/proxy-body-size`], "64k", "bodies the service would refuse stop at the edge");
    }
  });

  it("routes to the service's ClusterIP Service; login and orders with limits of their own, per client IP", () => {
    const svc = h.named("kubernetes:core/v1:Service", "shopfds-prod-service").inputs;
    assert.equal(svc.spec.type, "ClusterIP");
    assert.ok(svc.spec.ports.some((p: { port: number }) => p.port === 8080));
    const byName = (n: string) => h.named(INGRESS, n).inputs;
    const paths = (n: string) => byName(n).spec.rules.flatMap((r: any) => r.http.paths.map((p: any) => ({ host: r.host, path: p.path, type: p.pathType, to: `${p.backend.service.name}:${p.backend.service.port.number}` })));
    assert.deepEqual(paths("shopfds-prod-edge"), [{ host: "shop.shopfds.example", path: "/", type: "Prefix", to: `${svc.metadata.name}:8080` }]);
    assert.deepEqual(paths("shopfds-prod-edge-login"), [{ host: "shop.shopfds.example", path: "/login", type: "Exact", to: `${svc.metadata.name}:8080` }]);
    assert.deepEqual(paths("shopfds-prod-edge-orders"), [{ host: "shop.shopfds.example", path: "/orders", type: "Exact", to: `${svc.metadata.name}:8080` }]);
    const limits = (n: string) => Object.fromEntries(Object.entries(byName(n).metadata.annotations).filter(([k]) => k.startsWith(`${NGINX}/limit-`)));
    assert.deepEqual(limits("shopfds-prod-edge"), {}, "the rest of the API is limited by the service's own capacity");
    assert.deepEqual(limits("shopfds-prod-edge-login"), { [`${NGINX}/limit-rpm`]: "10", [`${NGINX}/limit-burst-multiplier`]: "5" });
    assert.deepEqual(limits("shopfds-prod-edge-orders"), { [`${NGINX}/limit-rps`]: "5", [`${NGINX}/limit-burst-multiplier`]: "5" });
  });

  it("the edge's body limit is the service's own", () => {
    assert.equal(SERVICE_MAX_BODY_BYTES, MAX_BODY);
  });

  it("exports the public URL as serviceUrl", async () => {
    assert.deepEqual(await resolve(program.serviceUrl), { value: "https://shop.shopfds.example", secret: false });
  });
});

describe("the edge's settings", () => {
  const prod = () => {
    const s = stackSettings("prod");
    return Object.fromEntries(Object.entries(s).map(([k, v]) => [k.replace(/^shopfds:/, ""), v]));
  };

  it("staging takes its certificates from Let's Encrypt's staging directory", () => {
    const s = stackSettings("staging")["shopfds:edge"] as { acmeServer: string };
    assert.equal(s.acmeServer, "https://acme-staging-v02.api.letsencrypt.org/directory");
  });

  it("refuses an edge without an https public URL, naming the field and the value", () => {
    const cfg = prod();
    assert.throws(() => parseStackConfig({ ...cfg, service: { ...(cfg.service as object), publicUrl: "http://shop.shopfds.example" } }), /service\.publicUrl: must be an https:\/\/ URL when edge is set: its host is the Ingress's and the certificate's \(got "http:\/\/shop\.shopfds\.example"\)/);
  });

  it("refuses a bad contact address or limit, naming the field", () => {
    const cfg = prod();
    assert.throws(() => parseStackConfig({ ...cfg, edge: { ...(cfg.edge as object), acmeEmail: "platform" } }), /edge\.acmeEmail: must be an e-mail address/);
    assert.throws(() => parseStackConfig({ ...cfg, edge: { ...(cfg.edge as object), ordersPerSecond: 0 } }), /edge\.ordersPerSecond: must be at least 1/);
  });
});
