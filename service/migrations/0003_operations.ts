/**
 * What the background side of ShopFDS records: the task log (one row per job, its state and retries),
 * the application log with its archive, and generated reports.
 *
 * The application log is archivable (FR-019: a weekly job archives log data older than 90 days):
 * `archive_app_logs(cutoff, batch_size)` moves rows older than the cutoff into `app_logs_archive` in
 * one statement per batch, so a row is always in exactly one of the two tables, even if the job dies.
 */
import type { MigrationBuilder } from "node-pg-migrate";

const id = { type: "bigint", primaryKey: true, sequenceGenerated: { precedence: "ALWAYS" } } as const;
// Known defect, kept because this migration has been applied: "now()" as a plain string becomes a
// constant (the migration's instant). 0007_timestamp_defaults repairs it; new migrations use pgm.func("now()").
const createdAt = { type: "timestamptz", notNull: true, default: "now()" } as const;

const appLogColumns = {
  logged_at: { type: "timestamptz", notNull: true, default: "now()" },
  level: { type: "text", notNull: true, check: "level IN ('trace', 'debug', 'info', 'warn', 'error', 'fatal')" },
  service: { type: "text", notNull: true },
  message: { type: "text", notNull: true },
  trace_id: { type: "text" },
  fields: { type: "jsonb", notNull: true, default: "{}" },
} as const;

export function up(pgm: MigrationBuilder): void {
  pgm.createType("task_type", ["email", "batch", "report", "cleanup"]);
  pgm.createType("task_state", ["pending", "running", "done", "failed"]);
  pgm.createType("report_status", ["queued", "running", "completed", "failed"]);

  pgm.createTable("task_log", {
    id,
    // The Celery task id (a UUID), shared with the broker message and the events Flower shows.
    task_id: { type: "uuid", notNull: true, unique: true },
    task_type: { type: "task_type", notNull: true },
    task_name: { type: "text", notNull: true },
    state: { type: "task_state", notNull: true, default: "pending" },
    retries: { type: "smallint", notNull: true, default: 0, check: "retries >= 0" },
    args: { type: "jsonb", notNull: true, default: "[]" },
    error: { type: "text" },
    worker: { type: "text" },
    created_at: createdAt,
    started_at: { type: "timestamptz" },
    finished_at: { type: "timestamptz" },
  });
  pgm.createIndex("task_log", ["task_name", "created_at"]);
  pgm.createIndex("task_log", "state", { where: "state IN ('pending', 'running')" });

  pgm.createTable("app_logs", { id, ...appLogColumns });
  pgm.createIndex("app_logs", "logged_at");
  pgm.createIndex("app_logs", ["service", "logged_at"]);
  // Same columns; ids are kept, so an archived row can be traced back.
  pgm.createTable("app_logs_archive", { id: { type: "bigint", primaryKey: true }, ...appLogColumns, archived_at: createdAt });
  pgm.createIndex("app_logs_archive", "logged_at");
  pgm.sql(`
    CREATE FUNCTION archive_app_logs(cutoff timestamptz, batch_size integer DEFAULT 10000) RETURNS bigint
    LANGUAGE plpgsql AS $$
    DECLARE
      moved bigint := 0;
      batch bigint;
    BEGIN
      IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'archive_app_logs: batch_size must be a positive integer (got %)', batch_size;
      END IF;
      LOOP
        WITH doomed AS (
          DELETE FROM app_logs
          WHERE id IN (SELECT id FROM app_logs WHERE logged_at < cutoff ORDER BY logged_at LIMIT batch_size)
          RETURNING id, logged_at, level, service, message, trace_id, fields
        )
        INSERT INTO app_logs_archive (id, logged_at, level, service, message, trace_id, fields)
        SELECT id, logged_at, level, service, message, trace_id, fields FROM doomed;
        GET DIAGNOSTICS batch = ROW_COUNT;
        moved := moved + batch;
        EXIT WHEN batch < batch_size;
      END LOOP;
      RETURN moved;
    END
    $$`);

  pgm.createTable(
    "reports",
    {
      id: { type: "uuid", primaryKey: true, default: pgm.func("gen_random_uuid()") },
      kind: { type: "text", notNull: true },
      params: { type: "jsonb", notNull: true, default: "{}" },
      status: { type: "report_status", notNull: true, default: "queued" },
      requested_by: { type: "bigint", references: "users", onDelete: "SET NULL" },
      task_id: { type: "uuid" },
      file_path: { type: "text" },
      error: { type: "text" },
      created_at: createdAt,
      completed_at: { type: "timestamptz" },
    },
    { constraints: { check: ["(status = 'completed') = (file_path IS NOT NULL)", "status <> 'failed' OR error IS NOT NULL"] } },
  );
  pgm.createIndex("reports", ["requested_by", "created_at"]);
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropTable("reports");
  pgm.sql("DROP FUNCTION archive_app_logs(timestamptz, integer)");
  pgm.dropTable("app_logs_archive");
  pgm.dropTable("app_logs");
  pgm.dropTable("task_log");
  pgm.dropType("report_status");
  pgm.dropType("task_state");
  pgm.dropType("task_type");
}
