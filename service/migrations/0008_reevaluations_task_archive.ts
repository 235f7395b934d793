/**
 * FR-017 and FR-019 on data that really accumulates:
 * - `fds_reevaluations`: what the nightly batch changed (one row per transaction and batch slot, so a
 *   batch run twice records nothing twice), with the decision before and after and the factors found;
 * - `task_log_archive` and `archive_task_log(cutoff, batch_size)`: every order, report and scheduled run
 *   leaves a task_log row; finished ones (done or failed) older than the cutoff move to the archive in
 *   batches, ids kept, in one statement per batch (nothing is lost: a row is either live or archived).
 *   Pending and running rows are never archived, however old (the stale-task check still needs them).
 */
import type { MigrationBuilder } from "node-pg-migrate";

export function up(pgm: MigrationBuilder): void {
  pgm.createTable(
    "fds_reevaluations",
    {
      id: { type: "bigint", primaryKey: true, sequenceGenerated: { precedence: "ALWAYS" } },
      transaction_id: { type: "bigint", notNull: true, references: "fds_transactions", onDelete: "CASCADE" },
      batch_slot: { type: "timestamptz", notNull: true },
      old_score: { type: "smallint", notNull: true },
      old_decision: { type: "fds_decision", notNull: true },
      new_score: { type: "smallint", notNull: true, check: "new_score BETWEEN 0 AND 100" },
      new_decision: { type: "fds_decision", notNull: true },
      factors: { type: "jsonb", notNull: true, default: "[]" },
      reevaluated_at: { type: "timestamptz", notNull: true, default: pgm.func("now()") },
    },
    { constraints: { unique: [["transaction_id", "batch_slot"]] } },
  );
  pgm.createIndex("fds_reevaluations", "batch_slot");

  pgm.sql("CREATE TABLE task_log_archive (LIKE task_log INCLUDING DEFAULTS, archived_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (id))");
  pgm.sql("ALTER TABLE task_log_archive ALTER COLUMN id DROP IDENTITY IF EXISTS");
  pgm.createIndex("task_log_archive", "task_id", { unique: true });
  pgm.createIndex("task_log", "finished_at", { where: "state IN ('done', 'failed')" });
  pgm.sql(`
    CREATE FUNCTION archive_task_log(cutoff timestamptz, batch_size integer DEFAULT 10000) RETURNS bigint
    LANGUAGE plpgsql AS $$
    DECLARE
      moved bigint := 0;
      batch bigint;
    BEGIN
      IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'archive_task_log: batch_size must be a positive integer (got %)', batch_size;
      END IF;
      LOOP
        WITH doomed AS (
          DELETE FROM task_log
          WHERE id IN (SELECT id FROM task_log WHERE state IN ('done', 'failed') AND coalesce(finished_at, created_at) < cutoff ORDER BY id LIMIT batch_size)
          RETURNING id, task_id, task_type, task_name, state, retries, args, error, worker, created_at, started_at, finished_at
        )
        INSERT INTO task_log_archive (id, task_id, task_type, task_name, state, retries, args, error, worker, created_at, started_at, finished_at)
        SELECT id, task_id, task_type, task_name, state, retries, args, error, worker, created_at, started_at, finished_at FROM doomed;
        GET DIAGNOSTICS batch = ROW_COUNT;
        moved := moved + batch;
        EXIT WHEN batch < batch_size;
      END LOOP;
      RETURN moved;
    END
    $$`);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql("DROP FUNCTION archive_task_log(timestamptz, integer)");
  pgm.dropIndex("task_log", "finished_at");
  pgm.dropTable("task_log_archive");
  pgm.dropTable("fds_reevaluations");
}
