/** Layer 1: Flower's Celery configuration module (components/jobs/flower-config.ts), exactly, and its refusals. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renderFlowerCeleryConfig } from "../../components/jobs/flower-config";
import { InvalidSettingsError } from "../../components/validation";

describe("renderFlowerCeleryConfig", () => {
  it("verifies the broker against the given CA and for the given name", () => {
    assert.equal(
      renderFlowerCeleryConfig({ caFile: "/run/secrets/internal-ca/ca.crt", serverName: "shopfds-prod-rabbitmq.shopfds-prod.svc" }),
      [
        "# Rendered by components/jobs/flower-config.ts: AMQPS to the broker, verified against the stack's CA.",
        "import ssl",
        "",
        "broker_use_ssl = {",
        '    "ca_certs": "/run/secrets/internal-ca/ca.crt",',
        '    "cert_reqs": ssl.CERT_REQUIRED,',
        '    "server_hostname": "shopfds-prod-rabbitmq.shopfds-prod.svc",',
        "}",
        "",
      ].join("\n"),
    );
  });

  it("names every bad field: a relative or quoting CA path, an address instead of a name", () => {
    assert.throws(
      () => renderFlowerCeleryConfig({ caFile: 'ca.crt"; import os', serverName: "10.0.0.7" }),
      (e: unknown) =>
        e instanceof InvalidSettingsError &&
        e.problems.length === 2 &&
        /^caFile: must be an absolute path \(got "ca\.crt\\"; import os"\)$/.test(e.problems[0]!) &&
        /^serverName: must be a DNS name \(the one in the broker's certificate\) \(got "10\.0\.0\.7"\)$/.test(e.problems[1]!),
    );
  });
});
