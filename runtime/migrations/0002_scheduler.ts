/**
 * The scheduler's ledger (runtime/jobs/scheduler.ts): one row per schedule and slot that fired.
 * Claiming a slot is inserting its row, so with two scheduler processes exactly one fires it (the
 * primary key decides), and a restarted scheduler does not fire a slot again.
 *
 * Idempotent: a database whose service created the table before the runtime shipped its own
 * migrations (ShopFDS's service/migrations/0004_scheduler up to runtime 0.5) keeps it as it is.
 */
import type { MigrationBuilder } from "node-pg-migrate";

export function up(pgm: MigrationBuilder): void {
  pgm.createTable(
    "scheduler_runs",
    {
      schedule: { type: "text", notNull: true },
      slot: { type: "timestamptz", notNull: true },
      fired_at: { type: "timestamptz", notNull: true, default: pgm.func("now()") },
      fired_by: { type: "text", notNull: true },
      task_id: { type: "uuid", notNull: true },
    },
    { ifNotExists: true, constraints: { primaryKey: ["schedule", "slot"] } },
  );
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropTable("scheduler_runs", { ifExists: true });
}
