/**
 * The blacklist's history: every add, renewal, change, removal and expiry of an entry, with who did it,
 * why and when, kept after the entry is gone (`blacklist_history`, written by a trigger on
 * `blacklist_entries`, so no writer can change an entry without leaving its line).
 *
 * Who: the transaction's `shopfds.actor` setting (runtime/fds/blacklist.ts sets it: the admin's
 * account, `system:expiry` for the sweep), else the entry's source for an add, else
 * `system:<database user>`. Why: `shopfds.reason` (a removal's), else the entry's reason. A removal of
 * a row already past its expiry is recorded as its expiry.
 */
import type { MigrationBuilder } from "node-pg-migrate";

/** The trigger function as this migration made it (0004 replaces it, and its down restores this). */
export const HISTORY_FUNCTION = `CREATE OR REPLACE FUNCTION blacklist_history_record() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  who text := nullif(current_setting('shopfds.actor', true), '');
  why text := nullif(current_setting('shopfds.reason', true), '');
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO blacklist_history (entry_type, value, key_version, action, actor, reason, expires_at)
    VALUES (NEW.entry_type, NEW.value, NEW.key_version, 'added', coalesce(who, NEW.source), NEW.reason, NEW.expires_at);
    RETURN NEW;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO blacklist_history (entry_type, value, key_version, action, actor, reason, expires_at)
    VALUES (NEW.entry_type, NEW.value, NEW.key_version,
      CASE WHEN OLD.expires_at <= now() THEN 'added'
           WHEN NEW.reason IS DISTINCT FROM OLD.reason OR NEW.source IS DISTINCT FROM OLD.source OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN 'renewed'
           ELSE 'changed' END,
      coalesce(who, NEW.source), NEW.reason, NEW.expires_at);
    RETURN NEW;
  ELSE
    INSERT INTO blacklist_history (entry_type, value, key_version, action, actor, reason, expires_at)
    VALUES (OLD.entry_type, OLD.value, OLD.key_version,
      CASE WHEN OLD.expires_at <= now() THEN 'expired' ELSE 'removed' END,
      coalesce(who, 'system:' || current_user), coalesce(why, OLD.reason), OLD.expires_at);
    RETURN OLD;
  END IF;
END
$fn$`;

export function up(pgm: MigrationBuilder): void {
  pgm.createTable(
    "blacklist_history",
    {
      id: { type: "bigint", primaryKey: true, sequenceGenerated: { precedence: "ALWAYS" } },
      entry_type: { type: "blacklist_type", notNull: true },
      value: { type: "text", notNull: true },
      key_version: { type: "smallint" },
      action: { type: "text", notNull: true, check: "action IN ('added', 'renewed', 'changed', 'removed', 'expired')" },
      actor: { type: "text", notNull: true },
      reason: { type: "text", notNull: true },
      expires_at: { type: "timestamptz", notNull: true },
      at: { type: "timestamptz", notNull: true, default: pgm.func("clock_timestamp()") },
    },
    { ifNotExists: true },
  );
  pgm.createIndex("blacklist_history", ["entry_type", "value", "id"], { ifNotExists: true });
  pgm.sql(HISTORY_FUNCTION);
  pgm.sql(`DROP TRIGGER IF EXISTS blacklist_history ON blacklist_entries;
CREATE TRIGGER blacklist_history AFTER INSERT OR UPDATE OR DELETE ON blacklist_entries FOR EACH ROW EXECUTE FUNCTION blacklist_history_record()`);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql("DROP TRIGGER IF EXISTS blacklist_history ON blacklist_entries");
  pgm.sql("DROP FUNCTION IF EXISTS blacklist_history_record()");
  pgm.dropTable("blacklist_history", { ifExists: true });
}
