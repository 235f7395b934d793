/**
 * Test support: a CA and server certificates it signs, made with openssl, for the tests that run real
 * servers over TLS (PostgreSQL, Redis Cluster, RabbitMQ).
 */
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { run } from "../../scripts/local-stack/process";

export interface TestCertificate {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * A CA `<prefix>-ca.crt` in `dir` and a server certificate it signs, naming `names` (DNS names, or
 * `IP:…` entries) as subjectAltName.
 */
export async function testCertificate(dir: string, prefix: string, names: readonly string[]): Promise<TestCertificate> {
  const file = (name: string) => path.join(dir, name);
  const ssl = (...args: string[]) => run("openssl", args);
  const cert: TestCertificate = { caFile: file(`${prefix}-ca.crt`), certFile: file(`${prefix}-server.crt`), keyFile: file(`${prefix}-server.key`) };
  await ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${prefix} CA`, "-keyout", file(`${prefix}-ca.key`), "-out", cert.caFile);
  await ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${names[0]!.replace(/^IP:/, "")}`, "-keyout", cert.keyFile, "-out", file(`${prefix}-server.csr`));
  const san = names.map((n) => (n.startsWith("IP:") ? n : `DNS:${n}`)).join(",");
  writeFileSync(file(`${prefix}-ext.cnf`), `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  await ssl("x509", "-req", "-in", file(`${prefix}-server.csr`), "-CA", cert.caFile, "-CAkey", file(`${prefix}-ca.key`), "-CAcreateserial", "-days", "2", "-extfile", file(`${prefix}-ext.cnf`), "-out", cert.certFile);
  return cert;
}
