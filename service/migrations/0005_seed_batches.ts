/**
 * The seed's ledger: each seed batch records, per table, the range of ids it created. The seed locks
 * the tables while it writes, so the ranges hold its rows and only them; a rerun deletes exactly those
 * ranges (FR-032), and data the seed did not create is never touched.
 */
import type { MigrationBuilder } from "node-pg-migrate";

export function up(pgm: MigrationBuilder): void {
  pgm.createTable("seed_batches", {
    id: { type: "integer", primaryKey: true, sequenceGenerated: { precedence: "ALWAYS" } },
    seed: { type: "integer", notNull: true },
    created_at: { type: "timestamptz", notNull: true, default: pgm.func("now()") },
    // { "users": [firstId, lastId], … }
    ranges: { type: "jsonb", notNull: true },
  });
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropTable("seed_batches");
}
