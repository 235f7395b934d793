/**
 * The FDS blacklist's durable copy (runtime/fds/blacklist.ts): every entry is written through to
 * Redis and here, and when the Redis Cluster is unavailable the checks read this table. Card numbers
 * are stored only as keyed hashes (HMAC-SHA-256 hex) with the version of the key that made them; IPs
 * and e-mail addresses in canonical form.
 *
 * Idempotent: a database whose service created these objects before the runtime shipped its own
 * migrations (ShopFDS's service/migrations/0002_fds up to runtime 0.5) keeps them as they are.
 */
import type { MigrationBuilder } from "node-pg-migrate";

export function up(pgm: MigrationBuilder): void {
  pgm.sql(`DO $$ BEGIN
    IF to_regtype('blacklist_type') IS NULL THEN CREATE TYPE blacklist_type AS ENUM ('ip', 'email', 'card'); END IF;
  END $$`);
  pgm.createTable(
    "blacklist_entries",
    {
      id: { type: "bigint", primaryKey: true, sequenceGenerated: { precedence: "ALWAYS" } },
      entry_type: { type: "blacklist_type", notNull: true },
      value: { type: "text", notNull: true },
      // Which HMAC key hashed a card number; only cards have one.
      key_version: { type: "smallint" },
      reason: { type: "text", notNull: true },
      source: { type: "text", notNull: true },
      created_at: { type: "timestamptz", notNull: true, default: pgm.func("now()") },
      expires_at: { type: "timestamptz", notNull: true },
    },
    {
      ifNotExists: true,
      constraints: {
        unique: [["entry_type", "value"]],
        check: [
          "(entry_type = 'card') = (key_version IS NOT NULL)",
          "entry_type <> 'card' OR value ~ '^[0-9a-f]{64}$'",
          "entry_type <> 'email' OR value = lower(btrim(value))",
          "expires_at > created_at",
        ],
      },
    },
  );
  pgm.createIndex("blacklist_entries", "expires_at", { ifNotExists: true });
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropTable("blacklist_entries", { ifExists: true });
  pgm.dropType("blacklist_type", { ifExists: true });
}
