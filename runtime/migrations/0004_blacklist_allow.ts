/**
 * Allow entries beside block entries (issue 29): `blacklist_entries.kind` is `block` (what every row
 * was until now) or `allow`, and one value may hold one of each — an allow wins over a block of the
 * same value while both are current (runtime/fds/blacklist.ts). The uniqueness of (entry_type, value)
 * becomes that of (kind, entry_type, value), and the history records the kind of every change.
 *
 * Idempotent like the others. The table is small (a few thousand entries), so the new unique index is
 * built in the migration's transaction; a table of millions would want CREATE UNIQUE INDEX
 * CONCURRENTLY first. `down` deletes the allow entries (recorded in the history as removed by
 * system:migration) before the old uniqueness comes back.
 */
import type { MigrationBuilder } from "node-pg-migrate";
import { HISTORY_FUNCTION } from "./0003_blacklist_history";

const HISTORY_FUNCTION_WITH_KIND = `CREATE OR REPLACE FUNCTION blacklist_history_record() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  who text := nullif(current_setting('shopfds.actor', true), '');
  why text := nullif(current_setting('shopfds.reason', true), '');
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO blacklist_history (kind, entry_type, value, key_version, action, actor, reason, expires_at)
    VALUES (NEW.kind, NEW.entry_type, NEW.value, NEW.key_version, 'added', coalesce(who, NEW.source), NEW.reason, NEW.expires_at);
    RETURN NEW;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO blacklist_history (kind, entry_type, value, key_version, action, actor, reason, expires_at)
    VALUES (NEW.kind, NEW.entry_type, NEW.value, NEW.key_version,
      CASE WHEN OLD.expires_at <= now() THEN 'added'
           WHEN NEW.reason IS DISTINCT FROM OLD.reason OR NEW.source IS DISTINCT FROM OLD.source OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN 'renewed'
           ELSE 'changed' END,
      coalesce(who, NEW.source), NEW.reason, NEW.expires_at);
    RETURN NEW;
  ELSE
    INSERT INTO blacklist_history (kind, entry_type, value, key_version, action, actor, reason, expires_at)
    VALUES (OLD.kind, OLD.entry_type, OLD.value, OLD.key_version,
      CASE WHEN OLD.expires_at <= now() THEN 'expired' ELSE 'removed' END,
      coalesce(who, 'system:' || current_user), coalesce(why, OLD.reason), OLD.expires_at);
    RETURN OLD;
  END IF;
END
$fn$`;

/** Drops every unique constraint on exactly the given columns of blacklist_entries, whatever its name. */
const dropUniqueOn = (columns: readonly string[]) => `DO $$ DECLARE c text; BEGIN
  FOR c IN SELECT conname FROM pg_constraint WHERE conrelid = 'blacklist_entries'::regclass AND contype = 'u'
    AND (SELECT array_agg(attname::text ORDER BY attname::text) FROM pg_attribute WHERE attrelid = conrelid AND attnum = ANY (conkey)) = ARRAY[${[...columns].sort().map((c) => `'${c}'`).join(", ")}]
  LOOP EXECUTE format('ALTER TABLE blacklist_entries DROP CONSTRAINT %I', c); END LOOP;
END $$`;

export function up(pgm: MigrationBuilder): void {
  pgm.sql(`ALTER TABLE blacklist_entries ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'block'`);
  pgm.sql(`ALTER TABLE blacklist_history ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'block'`);
  pgm.sql(`DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'blacklist_entries_kind_check') THEN
      ALTER TABLE blacklist_entries ADD CONSTRAINT blacklist_entries_kind_check CHECK (kind IN ('block', 'allow'));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'blacklist_history_kind_check') THEN
      ALTER TABLE blacklist_history ADD CONSTRAINT blacklist_history_kind_check CHECK (kind IN ('block', 'allow'));
    END IF;
  END $$`);
  pgm.sql(dropUniqueOn(["entry_type", "value"]));
  pgm.sql(`DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'blacklist_entries_kind_type_value_key') THEN
      ALTER TABLE blacklist_entries ADD CONSTRAINT blacklist_entries_kind_type_value_key UNIQUE (kind, entry_type, value);
    END IF;
  END $$`);
  pgm.sql(HISTORY_FUNCTION_WITH_KIND);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`SELECT set_config('shopfds.actor', 'system:migration', true), set_config('shopfds.reason', 'allow entries removed by the downgrade of 0004_blacklist_allow', true)`);
  pgm.sql(`DELETE FROM blacklist_entries WHERE kind = 'allow'`);
  pgm.sql(HISTORY_FUNCTION);
  pgm.sql(dropUniqueOn(["kind", "entry_type", "value"]));
  pgm.sql(`ALTER TABLE blacklist_entries ADD CONSTRAINT blacklist_entries_entry_type_value_key UNIQUE (entry_type, value)`);
  pgm.sql(`ALTER TABLE blacklist_entries DROP COLUMN IF EXISTS kind`);
  pgm.sql(`ALTER TABLE blacklist_history DROP COLUMN IF EXISTS kind`);
}
