/**
 * The fraud detection system's records: every evaluated transaction with its risk score, level and
 * decision, and the factors that produced the score.
 *
 * The blacklist's durable copy (`blacklist_entries`, type `blacklist_type`) was created here up to
 * @shopfds/runtime 0.5; the runtime now owns it (runtime/migrations/0001_blacklist, applied before these
 * by service/bin/migrate.ts), and a database migrated before keeps the table this migration made.
 */
import type { MigrationBuilder } from "node-pg-migrate";

const id = { type: "bigint", primaryKey: true, sequenceGenerated: { precedence: "ALWAYS" } } as const;
// Known defect, kept because this migration has been applied: "now()" as a plain string becomes a
// constant (the migration's instant). 0007_timestamp_defaults repairs it; new migrations use pgm.func("now()").
const createdAt = { type: "timestamptz", notNull: true, default: "now()" } as const;

export function up(pgm: MigrationBuilder): void {
  pgm.createType("risk_level", ["low", "medium", "high"]);
  pgm.createType("fds_decision", ["approve", "additional_auth", "block"]);

  pgm.createTable("fds_transactions", {
    id,
    // Null when the FDS blocked the attempt before an order existed.
    order_id: { type: "bigint", references: "orders", onDelete: "SET NULL" },
    user_id: { type: "bigint", references: "users", onDelete: "SET NULL" },
    amount: { type: "numeric(12,2)", notNull: true, check: "amount >= 0" },
    ip_address: { type: "inet" },
    email: { type: "text" },
    card_hash: { type: "text" },
    risk_score: { type: "smallint", notNull: true, check: "risk_score BETWEEN 0 AND 100" },
    risk_level: { type: "risk_level", notNull: true },
    decision: { type: "fds_decision", notNull: true },
    evaluation_ms: { type: "real", check: "evaluation_ms >= 0" },
    created_at: createdAt,
  });
  pgm.createIndex("fds_transactions", "created_at");
  pgm.createIndex("fds_transactions", "order_id");
  pgm.createIndex("fds_transactions", ["decision", "created_at"]);

  pgm.createTable(
    "fds_risk_factors",
    {
      id,
      transaction_id: { type: "bigint", notNull: true, references: "fds_transactions", onDelete: "CASCADE" },
      factor: { type: "text", notNull: true },
      score: { type: "smallint", notNull: true, check: "score BETWEEN 0 AND 100" },
      detail: { type: "jsonb", notNull: true, default: "{}" },
    },
    { constraints: { unique: [["transaction_id", "factor"]] } },
  );
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropTable("fds_risk_factors");
  pgm.dropTable("fds_transactions");
  pgm.dropType("fds_decision");
  pgm.dropType("risk_level");
}
