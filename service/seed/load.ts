/**
 * Writes a seed batch in one transaction, with the tables locked against other writers so the id
 * ranges it records in `seed_batches` hold its rows and only them; and deletes earlier batches by
 * those ranges (a rerun replaces the seed, FR-032; data the seed did not create is never touched).
 * Bulk statements (`INSERT … SELECT FROM unnest(arrays)`), thousands of rows each.
 */
import type pg from "pg";
import { type SeedData } from "./generate";

type Ranges = Record<string, [number, number]>;
const TABLES = ["users", "products", "carts", "orders", "order_items", "payments", "reviews", "fds_transactions", "fds_risk_factors", "blacklist_entries"] as const;

async function insert(client: pg.ClientBase, sql: string, params: unknown[]): Promise<number[]> {
  const { rows } = await client.query<{ id: string }>(sql, params);
  return rows.map((r) => Number(r.id));
}

const range = (ids: number[]): [number, number] => (ids.length === 0 ? [0, -1] : [Math.min(...ids), Math.max(...ids)]);

/** Deletes every earlier batch (children first); returns the blacklist values removed, for Redis. */
export async function deleteBatches(client: pg.ClientBase, progress: (m: string) => void): Promise<{ batches: number; blacklisted: { type: string; value: string }[] }> {
  const { rows } = await client.query<{ id: number; ranges: Ranges }>("SELECT id, ranges FROM seed_batches ORDER BY id");
  const removed: { type: string; value: string }[] = [];
  for (const b of rows) {
    const del = async (table: string, column = "id", key = table) => {
      const r = b.ranges[key];
      if (!r || r[1] < r[0]) return;
      await client.query(`DELETE FROM ${table} WHERE ${column} BETWEEN $1 AND $2`, r);
    };
    await del("fds_risk_factors");
    await del("fds_transactions");
    await del("reviews");
    await del("payments");
    await del("order_items");
    await del("orders");
    await del("cart_items", "cart_id", "carts");
    await del("carts");
    const bl = b.ranges.blacklist_entries;
    if (bl && bl[1] >= bl[0]) {
      const gone = await client.query<{ entry_type: string; value: string }>("DELETE FROM blacklist_entries WHERE id BETWEEN $1 AND $2 RETURNING entry_type, value", bl);
      removed.push(...gone.rows.map((r) => ({ type: r.entry_type, value: r.value })));
    }
    await del("products");
    await del("users");
    await client.query("DELETE FROM seed_batches WHERE id = $1", [b.id]);
    progress(`removed seed batch ${b.id}`);
  }
  return { batches: rows.length, blacklisted: removed };
}

/** Inserts the batch; returns its id ranges and row counts. */
export async function insertBatch(client: pg.ClientBase, data: SeedData, seed: number, progress: (m: string) => void): Promise<{ ranges: Ranges; rows: number }> {
  const ranges: Ranges = {};
  let rows = 0;
  const done = (table: string, ids: number[]) => {
    ranges[table] = range(ids);
    rows += ids.length;
    progress(`${table}: ${ids.length}`);
    return ids;
  };

  const userIds = done(
    "users",
    await insert(
      client,
      `INSERT INTO users (email, password_hash, name, created_at, updated_at)
       SELECT e, 'seed-no-login', n, c, c FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS t(e, n, c, o) ORDER BY o RETURNING id`,
      [data.users.map((u) => u.email), data.users.map((u) => u.name), data.users.map((u) => u.createdAt)],
    ),
  );
  const productIds = done(
    "products",
    await insert(
      client,
      `INSERT INTO products (sku, name, category, description, price, stock)
       SELECT s, n, c, d, p, 100000 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[]) WITH ORDINALITY AS t(s, n, c, d, p, o) ORDER BY o RETURNING id`,
      [data.products.map((p) => p.sku), data.products.map((p) => p.name), data.products.map((p) => p.category), data.products.map((p) => p.description), data.products.map((p) => p.price)],
    ),
  );
  const cartIds = done(
    "carts",
    await insert(client, "INSERT INTO carts (user_id) SELECT u FROM unnest($1::bigint[]) WITH ORDINALITY AS t(u, o) ORDER BY o RETURNING id", [data.carts.map((c) => userIds[c.user])]),
  );
  const cartItems = data.carts.flatMap((c, i) => c.items.map((it) => [cartIds[i], productIds[it.product], it.quantity] as const));
  await client.query("INSERT INTO cart_items (cart_id, product_id, quantity) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[])", [cartItems.map((x) => x[0]), cartItems.map((x) => x[1]), cartItems.map((x) => x[2])]);
  rows += cartItems.length;

  const orderIds = done(
    "orders",
    await insert(
      client,
      `INSERT INTO orders (user_id, status, total_amount, created_at, updated_at)
       SELECT u, s::order_status, t, c, c FROM unnest($1::bigint[], $2::text[], $3::numeric[], $4::timestamptz[]) WITH ORDINALITY AS x(u, s, t, c, o) ORDER BY o RETURNING id`,
      [data.orders.map((o) => userIds[o.user]), data.orders.map((o) => o.status), data.orders.map((o) => o.total), data.orders.map((o) => o.createdAt)],
    ),
  );
  const items = data.orders.flatMap((o, i) => o.items.map((it) => [orderIds[i], productIds[it.product], it.quantity, it.price] as const));
  done(
    "order_items",
    await insert(client, "INSERT INTO order_items (order_id, product_id, quantity, unit_price) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::numeric[]) RETURNING id", [
      items.map((x) => x[0]),
      items.map((x) => x[1]),
      items.map((x) => x[2]),
      items.map((x) => x[3]),
    ]),
  );
  const paid = data.orders.map((o, i) => ({ o, id: orderIds[i] })).filter((x) => x.o.status !== "cancelled");
  done(
    "payments",
    await insert(
      client,
      `INSERT INTO payments (order_id, amount, method, status, card_last4, created_at, paid_at)
       SELECT o, a, m::payment_method, 'captured', l, c, c FROM unnest($1::bigint[], $2::numeric[], $3::text[], $4::text[], $5::timestamptz[]) AS t(o, a, m, l, c) RETURNING id`,
      [paid.map((x) => x.id), paid.map((x) => x.o.total), paid.map((x) => x.o.payment.method), paid.map((x) => x.o.payment.last4), paid.map((x) => x.o.createdAt)],
    ),
  );
  done(
    "reviews",
    await insert(client, "INSERT INTO reviews (product_id, user_id, rating, title, body) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::smallint[], $4::text[], $5::text[]) RETURNING id", [
      data.reviews.map((r) => productIds[r.product]),
      data.reviews.map((r) => userIds[r.user]),
      data.reviews.map((r) => r.rating),
      data.reviews.map((r) => r.title),
      data.reviews.map((r) => r.body),
    ]),
  );
  const txIds = done(
    "fds_transactions",
    await insert(
      client,
      `INSERT INTO fds_transactions (order_id, user_id, amount, ip_address, email, risk_score, risk_level, decision, evaluation_ms, created_at)
       SELECT o, u, a, ip::inet, e, s, l::risk_level, d::fds_decision, 3, c
       FROM unnest($1::bigint[], $2::bigint[], $3::numeric[], $4::text[], $5::text[], $6::smallint[], $7::text[], $8::text[], $9::timestamptz[]) WITH ORDINALITY AS t(o, u, a, ip, e, s, l, d, c, n) ORDER BY n RETURNING id`,
      [
        orderIds,
        data.orders.map((o) => userIds[o.user]),
        data.orders.map((o) => o.total),
        data.orders.map((o) => o.fds.ip),
        data.orders.map((o) => data.users[o.user]!.email),
        data.orders.map((o) => o.fds.score),
        data.orders.map((o) => o.fds.level),
        data.orders.map((o) => o.fds.decision),
        data.orders.map((o) => o.createdAt),
      ],
    ),
  );
  const factors = data.orders.flatMap((o, i) => o.fds.factors.map((f) => [txIds[i], f.factor, f.score, JSON.stringify(f.detail)] as const));
  done(
    "fds_risk_factors",
    await insert(client, "INSERT INTO fds_risk_factors (transaction_id, factor, score, detail) SELECT t, f, s, d::jsonb FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::text[]) AS x(t, f, s, d) RETURNING id", [
      factors.map((x) => x[0]),
      factors.map((x) => x[1]),
      factors.map((x) => x[2]),
      factors.map((x) => x[3]),
    ]),
  );
  done(
    "blacklist_entries",
    await insert(
      client,
      `INSERT INTO blacklist_entries (entry_type, value, reason, source, expires_at)
       SELECT 'ip', v, 'seed: known fraud source', 'seed', now() + interval '7 days' FROM unnest($1::text[]) AS t(v)
       ON CONFLICT (kind, entry_type, value) DO NOTHING RETURNING id`,
      [data.blacklistedIps],
    ),
  );
  await client.query("INSERT INTO seed_batches (seed, ranges) VALUES ($1, $2)", [seed, JSON.stringify(ranges)]);
  return { ranges, rows };
}

/** Locks the seeded tables against other writers for the transaction (reads go on). */
export async function lockTables(client: pg.ClientBase): Promise<void> {
  await client.query(`LOCK TABLE ${[...TABLES, "cart_items", "seed_batches"].join(", ")} IN EXCLUSIVE MODE`);
}
