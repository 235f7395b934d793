/**
 * Layer 1: a value rule is defined once (runtime/rules.ts) and the stack settings, the renderers and the
 * outputs contract all apply it: the same bad value gets the same message from each.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseStackConfig } from "../../components/config";
import { renderPostgresConf } from "../../components/postgres/render";
import { renderRedisConf } from "../../components/redis/render";
import { parseStackOutputs } from "../../runtime/outputs";
import { RULES } from "../../runtime/rules";

const messageOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected a refusal");
};

describe("value rules, one definition each", () => {
  it("a port of 70000: the same message from the stack settings, a renderer and the outputs contract", () => {
    const fromConfig = messageOf(() => parseStackConfig({ platform: "docker", postgres: { hostPort: 70000 } }));
    const fromRenderer = messageOf(() => renderRedisConf({ port: 70000, clusterPort: 16379, nodeTimeoutMs: 2000, dataDir: "/data", maxMemory: "64mb", authIncludeFile: "/run/a.conf", announceHostnames: false }));
    const endpoint = { host: "h", port: 70000 };
    const fromOutputs = messageOf(() =>
      parseStackOutputs({ postgres: { primary: endpoint, replicas: [endpoint], database: "d", user: "u", password: "p" }, redis: { nodes: Array(6).fill({ host: "h", port: 1 }), password: "p" }, fds: { cardHashKeys: [{ version: 1, key: "0".repeat(64) }] }, rabbitmq: { url: "amqp://u:p@h:5672/v", managementUrl: "http://h/" } }),
    );
    for (const m of [fromConfig, fromRenderer, fromOutputs]) assert.ok(m.includes(RULES.port.message), m);
  });

  it("Redis sizes and node timeouts, PostgreSQL sizes and identifiers: the settings and the renderers agree", () => {
    const conf = { port: 6379, clusterPort: 16379, nodeTimeoutMs: 2000, dataDir: "/data", maxMemory: "64mb", authIncludeFile: "/run/a.conf", announceHostnames: false };
    for (const [rule, settings, render] of [
      [RULES.redisSize, { redis: { maxMemory: "1G" } }, () => renderRedisConf({ ...conf, maxMemory: "1G" })],
      [RULES.redisNodeTimeoutMs, { redis: { nodeTimeoutMs: 15000 } }, () => renderRedisConf({ ...conf, nodeTimeoutMs: 15000 })],
      [RULES.pgSize, { postgres: { sharedBuffers: "1G" } }, () => renderPostgresConf({ port: 5432, listenAddresses: "*", clusterName: "c", hbaFile: "/h", unixSocketDirectory: "/s", sharedBuffers: "1G", maxConnections: 100, maxSlotWalKeepSize: "1GB", replicas: 1 } as never)],
    ] as const) {
      assert.ok(messageOf(() => parseStackConfig({ platform: "docker", ...settings })).includes(rule.message), rule.message);
      assert.ok(messageOf(render).includes(rule.message), rule.message);
    }
    assert.equal(RULES.identifier.test("shopfds"), true);
    assert.equal(RULES.identifier.test('x"; DROP'), false);
  });
});
