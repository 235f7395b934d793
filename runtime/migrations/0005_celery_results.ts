/**
 * Celery's database result backend tables (runtime/jobs/results.ts): the store chords count in,
 * shared with Python services configured with `result_backend = "db+postgresql://…"`. Created as
 * Celery 5.2's SQLAlchemy models define them (celery/backends/database/models.py: Task with the
 * extended columns, TaskSet, their sequences), so SQLAlchemy's `create_all` on the Python side finds
 * them and creates nothing. Idempotent: a database where a Python worker created them first keeps them.
 */
import type { MigrationBuilder } from "node-pg-migrate";

export function up(pgm: MigrationBuilder): void {
  pgm.sql(`CREATE SEQUENCE IF NOT EXISTS task_id_sequence;
CREATE SEQUENCE IF NOT EXISTS taskset_id_sequence;
CREATE TABLE IF NOT EXISTS celery_taskmeta (
  id integer NOT NULL DEFAULT nextval('task_id_sequence') PRIMARY KEY,
  task_id varchar(155) UNIQUE,
  status varchar(50),
  result bytea,
  date_done timestamp,
  traceback text,
  name varchar(155),
  args bytea,
  kwargs bytea,
  worker varchar(155),
  retries integer,
  queue varchar(155)
);
CREATE TABLE IF NOT EXISTS celery_tasksetmeta (
  id integer NOT NULL DEFAULT nextval('taskset_id_sequence') PRIMARY KEY,
  taskset_id varchar(155) UNIQUE,
  result bytea,
  date_done timestamp
);
CREATE INDEX IF NOT EXISTS celery_taskmeta_date_done ON celery_taskmeta (date_done);`);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`DROP TABLE IF EXISTS celery_taskmeta;
DROP TABLE IF EXISTS celery_tasksetmeta;
DROP SEQUENCE IF EXISTS task_id_sequence;
DROP SEQUENCE IF EXISTS taskset_id_sequence;`);
}
