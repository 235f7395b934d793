/**
 * The shop's core: users, products, carts, orders, payments and reviews.
 *
 * Money is numeric(12,2) (never float); amounts and quantities are range-checked in the database so a
 * bad writer cannot store a negative price or an empty order line. Card numbers are never stored: a
 * payment keeps only the last four digits.
 */
import type { MigrationBuilder } from "node-pg-migrate";

const id = { type: "bigint", primaryKey: true, sequenceGenerated: { precedence: "ALWAYS" } } as const;
// Known defect, kept because this migration has been applied: "now()" as a plain string becomes a
// constant (the migration's instant). 0007_timestamp_defaults repairs it; new migrations use pgm.func("now()").
const createdAt = { type: "timestamptz", notNull: true, default: "now()" } as const;
const money = (check: string) => ({ type: "numeric(12,2)", notNull: true, check }) as const;

export function up(pgm: MigrationBuilder): void {
  pgm.createType("user_role", ["customer", "admin"]);
  pgm.createType("order_status", ["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]);
  pgm.createType("payment_method", ["card", "bank_transfer", "wallet"]);
  pgm.createType("payment_status", ["pending", "authorized", "captured", "failed", "refunded"]);

  pgm.createTable("users", {
    id,
    // Stored trimmed and lower-cased, so the unique constraint is case-insensitive without citext.
    email: { type: "text", notNull: true, unique: true, check: "email = lower(btrim(email)) AND email LIKE '%_@_%'" },
    password_hash: { type: "text", notNull: true },
    name: { type: "text", notNull: true },
    role: { type: "user_role", notNull: true, default: "customer" },
    created_at: createdAt,
    updated_at: createdAt,
    last_login_at: { type: "timestamptz" },
  });

  pgm.createTable("products", {
    id,
    sku: { type: "text", notNull: true, unique: true },
    name: { type: "text", notNull: true },
    description: { type: "text", notNull: true, default: "" },
    category: { type: "text", notNull: true },
    price: money("price >= 0"),
    stock: { type: "integer", notNull: true, default: 0, check: "stock >= 0" },
    is_active: { type: "boolean", notNull: true, default: true },
    created_at: createdAt,
    updated_at: createdAt,
  });
  pgm.createIndex("products", ["category", "name"]);

  pgm.createTable("carts", {
    id,
    user_id: { type: "bigint", notNull: true, unique: true, references: "users", onDelete: "CASCADE" },
    created_at: createdAt,
    updated_at: createdAt,
  });
  pgm.createTable(
    "cart_items",
    {
      cart_id: { type: "bigint", notNull: true, references: "carts", onDelete: "CASCADE" },
      product_id: { type: "bigint", notNull: true, references: "products", onDelete: "CASCADE" },
      quantity: { type: "integer", notNull: true, check: "quantity > 0" },
      added_at: createdAt,
    },
    { constraints: { primaryKey: ["cart_id", "product_id"] } },
  );

  pgm.createTable("orders", {
    id,
    user_id: { type: "bigint", notNull: true, references: "users", onDelete: "RESTRICT" },
    status: { type: "order_status", notNull: true, default: "pending" },
    total_amount: money("total_amount >= 0"),
    currency: { type: "char(3)", notNull: true, default: "KRW", check: "currency ~ '^[A-Z]{3}$'" },
    shipping_address: { type: "jsonb", notNull: true, default: "{}" },
    created_at: createdAt,
    updated_at: createdAt,
  });
  pgm.createIndex("orders", ["user_id", { name: "created_at", sort: "DESC" }]);
  pgm.createIndex("orders", ["status", "created_at"]);

  pgm.createTable(
    "order_items",
    {
      id,
      order_id: { type: "bigint", notNull: true, references: "orders", onDelete: "CASCADE" },
      product_id: { type: "bigint", notNull: true, references: "products", onDelete: "RESTRICT" },
      quantity: { type: "integer", notNull: true, check: "quantity > 0" },
      unit_price: money("unit_price >= 0"),
    },
    { constraints: { unique: [["order_id", "product_id"]] } },
  );
  pgm.createIndex("order_items", "product_id");

  pgm.createTable("payments", {
    id,
    order_id: { type: "bigint", notNull: true, references: "orders", onDelete: "RESTRICT" },
    amount: money("amount > 0"),
    method: { type: "payment_method", notNull: true },
    status: { type: "payment_status", notNull: true, default: "pending" },
    // Never a card number: only what a receipt shows.
    card_last4: { type: "char(4)", check: "card_last4 ~ '^[0-9]{4}$'" },
    provider_reference: { type: "text" },
    created_at: createdAt,
    paid_at: { type: "timestamptz" },
  });
  pgm.createIndex("payments", "order_id");

  pgm.createTable(
    "reviews",
    {
      id,
      product_id: { type: "bigint", notNull: true, references: "products", onDelete: "CASCADE" },
      user_id: { type: "bigint", notNull: true, references: "users", onDelete: "CASCADE" },
      rating: { type: "smallint", notNull: true, check: "rating BETWEEN 1 AND 5" },
      title: { type: "text", notNull: true, default: "" },
      body: { type: "text", notNull: true, default: "" },
      created_at: createdAt,
    },
    { constraints: { unique: [["product_id", "user_id"]] } },
  );
  pgm.createIndex("reviews", "user_id");
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropTable("reviews");
  pgm.dropTable("payments");
  pgm.dropTable("order_items");
  pgm.dropTable("orders");
  pgm.dropTable("cart_items");
  pgm.dropTable("carts");
  pgm.dropTable("products");
  pgm.dropTable("users");
  pgm.dropType("payment_status");
  pgm.dropType("payment_method");
  pgm.dropType("order_status");
  pgm.dropType("user_role");
}
