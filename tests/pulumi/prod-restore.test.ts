/**
 * Layer 2: point-in-time recovery as a stack setting. With `postgres.restore`, the prod program
 * bootstraps a new CloudNativePG cluster from the named backup folder up to the target time, and
 * archives into a new folder (README, "Restore to a point in time").
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { validateCustomResource } from "./crd-schema";
import { MockHarness, stackSettings, TEST_SECRETS } from "./harness";

const h = new MockHarness();

before(async () => {
  const settings = stackSettings("prod");
  await h.runProgram(
    "prod",
    {
      ...settings,
      "shopfds:postgres": { ...(settings["shopfds:postgres"] as object), restore: { fromServerName: "shopfds-prod-pg", targetTime: "2026-11-29T08:00:00+09:00" } },
      "shopfds:backup": { ...(settings["shopfds:backup"] as object), serverName: "shopfds-prod-pg-r1" },
    },
    TEST_SECRETS.prod,
  );
});

describe("prod stack: restore to a point in time", () => {
  it("recovers from the old cluster's folder up to the target time, and archives into the new folder", () => {
    const cluster = h.named("kubernetes:postgresql.cnpg.io/v1:Cluster", "shopfds-prod-pg").inputs;
    assert.deepEqual(validateCustomResource("postgresql.cnpg.io/v1", "Cluster", cluster), []);
    assert.deepEqual(cluster.spec.bootstrap, {
      recovery: { source: "origin", database: "shopfds", owner: "shopfds", secret: { name: "shopfds-prod-pg-app-credentials" }, recoveryTarget: { targetTime: "2026-11-29T08:00:00+09:00" } },
    });
    assert.deepEqual(
      cluster.spec.externalClusters.map((c: any) => [c.name, c.barmanObjectStore.destinationPath, c.barmanObjectStore.serverName]),
      [["origin", "s3://shopfds-backups/prod", "shopfds-prod-pg"]],
    );
    assert.equal(cluster.spec.backup.barmanObjectStore.serverName, "shopfds-prod-pg-r1");
  });
});
