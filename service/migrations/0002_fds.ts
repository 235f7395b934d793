/**
 * The fraud detection system's records: every evaluated transaction with its risk score, level and
 * decision, the factors that produced the score, and the blacklist's durable copy.
 *
 * `blacklist_entries` backs the Redis blacklist: writes go to both, and when the Redis Cluster is
 * unavailable the FDS checks this table instead. Card numbers appear only as keyed hashes (HMAC-SHA-256
 * hex) with the version of the key that made them, so keys can be rotated; IPs and e-mail addresses
 * are stored in canonical form so ranges and administration stay possible.
 */
import type { MigrationBuilder } from "node-pg-migrate";

const id = { type: "bigint", primaryKey: true, sequenceGenerated: { precedence: "ALWAYS" } } as const;
// Known defect, kept because this migration has been applied: "now()" as a plain string becomes a
// constant (the migration's instant). 0007_timestamp_defaults repairs it; new migrations use pgm.func("now()").
const createdAt = { type: "timestamptz", notNull: true, default: "now()" } as const;

export function up(pgm: MigrationBuilder): void {
  pgm.createType("risk_level", ["low", "medium", "high"]);
  pgm.createType("fds_decision", ["approve", "additional_auth", "block"]);
  pgm.createType("blacklist_type", ["ip", "email", "card"]);

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

  pgm.createTable(
    "blacklist_entries",
    {
      id,
      entry_type: { type: "blacklist_type", notNull: true },
      value: { type: "text", notNull: true },
      // Which HMAC key hashed a card number; only cards have one.
      key_version: { type: "smallint" },
      reason: { type: "text", notNull: true },
      source: { type: "text", notNull: true },
      created_at: createdAt,
      expires_at: { type: "timestamptz", notNull: true },
    },
    {
      constraints: {
        unique: [["entry_type", "value"]],
        check: [
          "(entry_type = 'card') = (key_version IS NOT NULL)",
          "entry_type <> 'card' OR value ~ '^[0-9a-f]{64}$'",
          "entry_type <> 'email' OR value = lower(btrim(value))",
          "expires_at > created_at",
        ],
      },
    },
  );
  pgm.createIndex("blacklist_entries", "expires_at");
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropTable("blacklist_entries");
  pgm.dropTable("fds_risk_factors");
  pgm.dropTable("fds_transactions");
  pgm.dropType("blacklist_type");
  pgm.dropType("fds_decision");
  pgm.dropType("risk_level");
}
