/**
 * Flower's Celery configuration module when the broker takes AMQPS only. `celery --config=<module>`
 * sets CELERY_CONFIG_MODULE, which the app's loader imports (from PYTHONPATH); Flower's event
 * consumer then connects through kombu and py-amqp with `broker_use_ssl`. Without it, py-amqp checks
 * the broker against the system's CAs only, which never hold the stack's own CA
 * (tests/fixtures/upstream/facts.yaml, py-amqp-ssl-defaults). Run with Debian's Celery against a
 * TLS-only RabbitMQ in tests/integration/tls-services.test.ts.
 *
 * Flower 2.0.1's calls to the management API do not verify its certificate (`validate_cert=False`,
 * flower/utils/broker.py): they are encrypted, but not authenticated.
 */
import { isHost, isSafePath, Problems } from "../validation";

/** The module's name: Flower's container puts its directory on PYTHONPATH. */
export const FLOWER_CELERY_CONFIG_MODULE = "shopfds_flower_celeryconfig";

export interface FlowerCeleryConfigInput {
  /** The CA that signs the broker's certificate. */
  readonly caFile: string;
  /** The name the broker's certificate must carry (the host of the broker URL). */
  readonly serverName: string;
}

export function renderFlowerCeleryConfig(input: FlowerCeleryConfigInput): string {
  const p = new Problems("Flower's Celery configuration");
  p.check(isSafePath(input.caFile), "caFile", "must be an absolute path", input.caFile);
  p.check(isHost(input.serverName) && !/^[\d.:]+$/.test(input.serverName), "serverName", "must be a DNS name (the one in the broker's certificate)", input.serverName);
  p.throwIfAny();
  return `# Rendered by components/jobs/flower-config.ts: AMQPS to the broker, verified against the stack's CA.
import ssl

broker_use_ssl = {
    "ca_certs": "${input.caFile}",
    "cert_reqs": ssl.CERT_REQUIRED,
    "server_hostname": "${input.serverName}",
}
`;
}
