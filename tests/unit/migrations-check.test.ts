/**
 * Layer 1: the build fails if a migration lacks `down` (issue 3). The check itself is proven able to
 * fail on a fixture directory holding one migration without `down`.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { RUNTIME_MIGRATIONS_DIR } from "../../runtime/db/migrate";
import { migrationNames, migrationsWithoutDown, resolveTarget, MigrationTargetError } from "../../service/bin/migrate";

const configured = { host: "127.0.0.1", port: 15432, database: "shopfds", user: "shopfds", password: "s3cret" };

describe("migration files", () => {
  it("every migration in migrations/ and the runtime's exports a down function", async () => {
    assert.deepEqual(await migrationsWithoutDown(), []);
    assert.deepEqual(await migrationsWithoutDown(RUNTIME_MIGRATIONS_DIR), []);
  });

  it("the check names a migration that has no down", async () => {
    assert.deepEqual(await migrationsWithoutDown(path.join(__dirname, "../fixtures/migrations-without-down")), ["0002_no-down"]);
  });

  it("migrations are numbered and run in a fixed order", async () => {
    assert.deepEqual(await migrationNames(), ["@shopfds/runtime/0001_blacklist", "@shopfds/runtime/0002_scheduler", "@shopfds/runtime/0003_blacklist_history", "@shopfds/runtime/0004_blacklist_allow", "@shopfds/runtime/0005_celery_results", "0001_commerce", "0002_fds", "0003_operations", "0004_scheduler", "0005_seed_batches", "0006_report_content", "0007_timestamp_defaults", "0008_reevaluations_task_archive"]);
  });
});

describe("the migration target must be the configured database", () => {
  it("accepts the configured server under another loopback spelling, keeping the stack's credentials", () => {
    assert.deepEqual(resolveTarget(configured, "postgres://someone:other@localhost:15432/shopfds"), configured);
    assert.deepEqual(resolveTarget(configured, undefined), configured);
  });

  const refusals: [string, string][] = [
    ["postgres://127.0.0.1:15433/shopfds", "refusing to touch 127.0.0.1:15433/shopfds: it is not the configured database (postgres://shopfds@127.0.0.1:15432/shopfds): port 15433 is not 15432"],
    ["postgres://db.example.com:15432/shopfds", "refusing to touch db.example.com:15432/shopfds: it is not the configured database (postgres://shopfds@127.0.0.1:15432/shopfds): host db.example.com is not 127.0.0.1"],
    ["postgresql://127.0.0.1:15432/postgres", "refusing to touch 127.0.0.1:15432/postgres: it is not the configured database (postgres://shopfds@127.0.0.1:15432/shopfds): database \"postgres\" is not \"shopfds\""],
    ["postgres://localhost/shopfds", "refusing to touch localhost:5432/shopfds: it is not the configured database (postgres://shopfds@127.0.0.1:15432/shopfds): port 5432 is not 15432"],
    ["mysql://127.0.0.1:15432/shopfds", "--url: protocol must be postgres: or postgresql: (got mysql:)"],
    ["not a url", "--url: not a valid connection URL (expected postgres://host:port/database)"],
  ];
  for (const [url, message] of refusals) {
    it(`refuses ${url}`, () => {
      assert.throws(() => resolveTarget(configured, url), (e: Error) => e instanceof MigrationTargetError && e.message === message);
    });
  }

  it("never puts the password in a refusal", () => {
    assert.throws(() => resolveTarget(configured, "postgres://u:p@127.0.0.1:1/x"), (e: Error) => !e.message.includes("s3cret") && !e.message.includes(":p@"));
  });
});
