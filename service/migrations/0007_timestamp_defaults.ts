/**
 * Fixes the timestamp defaults of databases migrated before 0001–0003 used `pgm.func("now()")`: the
 * default was written as the string 'now()', which PostgreSQL evaluated once, at migration time, so
 * every `created_at` (and `updated_at`, `logged_at`, `added_at`, `archived_at`) of those databases got
 * that one instant. Every timestamptz column whose default is a constant becomes `DEFAULT now()` again.
 * Rows already written keep their values (the true times are not known).
 */
import type { MigrationBuilder } from "node-pg-migrate";

export function up(pgm: MigrationBuilder): void {
  pgm.sql(`DO $$
    DECLARE c record;
    BEGIN
      FOR c IN
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = current_schema() AND data_type = 'timestamp with time zone' AND column_default ~ '^''[0-9]'
      LOOP
        EXECUTE format('ALTER TABLE %I ALTER COLUMN %I SET DEFAULT now()', c.table_name, c.column_name);
      END LOOP;
    END $$`);
}

export function down(): void {
  // Nothing to undo: the constant defaults were the defect this migration removes, and a fresh
  // database made by 0001–0003 already has now() defaults.
}
