/**
 * Reports keep their content in PostgreSQL: the worker that generates a report and the service instance
 * that serves its download link are different processes (different pods in production), and the
 * database is the storage they already share. A report is a summary of at most a few hundred lines.
 * `file_path` stays as the download's file name.
 */
import type { MigrationBuilder } from "node-pg-migrate";

export function up(pgm: MigrationBuilder): void {
  pgm.addColumn("reports", { content: { type: "text" } });
  pgm.dropConstraint("reports", "reports_chck_1");
  pgm.addConstraint("reports", "reports_completed_has_content", { check: "(status = 'completed') = (file_path IS NOT NULL AND content IS NOT NULL)" });
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropConstraint("reports", "reports_completed_has_content");
  pgm.addConstraint("reports", "reports_chck_1", { check: "(status = 'completed') = (file_path IS NOT NULL)" });
  pgm.dropColumn("reports", "content");
}
