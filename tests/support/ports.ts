/**
 * Test support: the ports of this `make test` run. scripts/test.sh takes a free block of 1000 ports
 * (SHOPFDS_TEST_PORT_BASE, locked for the run) so two runs and a `make dev` share one machine; the test
 * stack uses the first hundred, and each test file with servers of its own takes its own hundred here.
 */
export const TEST_PORT_BASE = Number(process.env.SHOPFDS_TEST_PORT_BASE ?? process.env.SHOPFDS_LOCAL_PORT_BASE ?? 25400);

const SLOTS = {
  lifecycle: 100,
  health: 200,
  apps: 300,
  alerting: 400,
  /** The upper half of alerting's hundred (that file uses +0…+5). */
  dashboards: 450,
  redisFailover: 500,
  hungServers: 600,
  /** The upper half of hungServers' hundred (that file uses +32 and +33). */
  replicaDiscovery: 650,
  brokerRestart: 700,
  /** The upper half of brokerRestart's hundred (that file uses +0, +1 and +72…+76; this one +0, +1, +22…+26). */
  brokerAlarm: 750,
  postgresTls: 800,
  /** The upper half of postgresTls' hundred (that file uses its first ports). */
  taskFaults: 850,
  redisRestart: 900,
  /** Inside redisRestart's hundred (that file uses +0 and +50): six TLS nodes +10…+15, their bus +20…+25. */
  redisTls: 910,
  /** Inside redisRestart's hundred: AMQPS +30, management +31, Prometheus +32, distribution +33, epmd +34. */
  rabbitTls: 930,
} as const;

/** The first port of a test file's own hundred. */
export function testPorts(file: keyof typeof SLOTS): number {
  return TEST_PORT_BASE + SLOTS[file];
}
