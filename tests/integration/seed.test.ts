/**
 * Layer 3: the seed on a database of its own: exact counts, the 85/10/5 split, referential consistency,
 * determinism, a rerun that replaces only its own rows, --append doubling, and the production refusal.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { loadStackOutputs, type PostgresOutputs, type StackOutputs } from "../../runtime/outputs";
import { seedDatabase } from "../../service/bin/seed";
import { createMigratedDatabase } from "../support/databases";

const ROOT = path.resolve(__dirname, "../..");
let outputs: StackOutputs;
let postgres: PostgresOutputs;
let db: pg.Pool;
let dropDb: () => Promise<void> = async () => undefined;
const one = async (sql: string) => (await db.query(sql)).rows[0];
const counts = async () =>
  one(`SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM products)::int AS products, (SELECT count(*) FROM orders)::int AS orders,
              (SELECT count(*) FROM reviews)::int AS reviews, (SELECT count(*) FROM fds_transactions)::int AS fds, (SELECT count(*) FROM carts)::int AS carts`);

before(async () => {
  outputs = await loadStackOutputs();
  const created = await createMigratedDatabase(outputs, `shopfds_seed_${process.pid}`);
  dropDb = created.drop;
  postgres = created.postgres;
  db = new pg.Pool({ host: postgres.primary.host, port: postgres.primary.port, database: postgres.database, user: postgres.user, password: postgres.password, max: 2 });
  // Data the seed did not create: it must survive every seed run.
  await db.query("INSERT INTO users (email, password_hash, name) VALUES ('keep@shop.example', 'x', 'Keep Me')");
  await db.query("INSERT INTO products (sku, name, category, price) VALUES ('REAL-1', 'Real product', 'real', 100)");
  await db.query("INSERT INTO orders (user_id, total_amount) SELECT id, 100 FROM users WHERE email = 'keep@shop.example'");
});

after(async () => {
  await db?.end();
  await dropDb();
});

describe("seed", () => {
  it("creates exactly the counts, split 85/10/5, consistent with itself and the FDS rules", async () => {
    const r = await seedDatabase({ postgres }, { seed: 42 });
    console.log(`    seeded ${r.rows} rows in ${(r.ms / 1000).toFixed(2)} s`);
    assert.deepEqual(await counts(), { users: 1001, products: 501, orders: 10001, reviews: 5000, fds: 10000, carts: 300 });
    assert.deepEqual((await db.query("SELECT risk_level, count(*)::int AS n FROM fds_transactions GROUP BY 1 ORDER BY 1")).rows, [
      { risk_level: "low", n: 8500 },
      { risk_level: "medium", n: 1000 },
      { risk_level: "high", n: 500 },
    ]);
    assert.equal((await one("SELECT count(*)::int AS n FROM users WHERE email ~ '^user[0-9]+@test\\.com$'")).n, 1000);
    const checks: Record<string, string> = {
      "order totals equal their items": "SELECT count(*)::int AS n FROM orders o WHERE o.total_amount <> (SELECT coalesce(sum(quantity * unit_price), 0) FROM order_items i WHERE i.order_id = o.id) AND EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)",
      "payments equal their order's total": "SELECT count(*)::int AS n FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.amount <> o.total_amount",
      "reviews only by buyers": "SELECT count(*)::int AS n FROM reviews r WHERE NOT EXISTS (SELECT 1 FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.user_id = r.user_id AND i.product_id = r.product_id AND o.status <> 'cancelled')",
      "levels follow scores": "SELECT count(*)::int AS n FROM fds_transactions WHERE risk_level <> (CASE WHEN risk_score <= 30 THEN 'low' WHEN risk_score <= 70 THEN 'medium' ELSE 'high' END)::risk_level",
      "decisions follow levels": "SELECT count(*)::int AS n FROM fds_transactions WHERE decision <> (CASE risk_level WHEN 'low' THEN 'approve' WHEN 'medium' THEN 'additional_auth' ELSE 'block' END)::fds_decision",
      "blocked ones hit the blacklist": "SELECT count(*)::int AS n FROM fds_transactions t WHERE decision = 'block' AND NOT EXISTS (SELECT 1 FROM blacklist_entries b WHERE b.entry_type = 'ip' AND b.value = host(t.ip_address))",
      "FDS transactions match their order": "SELECT count(*)::int AS n FROM fds_transactions t JOIN orders o ON o.id = t.order_id WHERE t.amount <> o.total_amount OR t.user_id <> o.user_id",
    };
    for (const [what, sql] of Object.entries(checks)) assert.equal((await one(sql)).n, 0, what);
  });

  it("a rerun replaces the seed with the same data and touches nothing else; --append doubles it", async () => {
    const digest = "SELECT md5(string_agg(name || email, ',' ORDER BY email)) AS d FROM users WHERE email LIKE 'user%@test.com'";
    const before = (await one(digest)).d;
    const again = await seedDatabase({ postgres }, { seed: 42 });
    assert.equal(again.removedBatches, 1);
    assert.deepEqual(await counts(), { users: 1001, products: 501, orders: 10001, reviews: 5000, fds: 10000, carts: 300 });
    assert.equal((await one(digest)).d, before, "deterministic for a seed value");
    await seedDatabase({ postgres }, { seed: 42, append: true });
    assert.deepEqual(await counts(), { users: 2001, products: 1001, orders: 20001, reviews: 10000, fds: 20000, carts: 600 });
    assert.equal((await one("SELECT count(*)::int AS n FROM users WHERE email = 'user2000@test.com'")).n, 1, "the second batch numbers on");
    const kept = await one("SELECT (SELECT count(*) FROM users WHERE email = 'keep@shop.example')::int AS u, (SELECT count(*) FROM products WHERE sku = 'REAL-1')::int AS p, (SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id WHERE u.email = 'keep@shop.example')::int AS o");
    assert.deepEqual(kept, { u: 1, p: 1, o: 1 });
  });

  it("make dev's --if-empty keeps existing seed data and orders placed on it; a replace they block changes nothing and says what to do", async () => {
    // An order placed through the service on a seed user and a seed product (as after `make dev`).
    await db.query(
      `WITH o AS (INSERT INTO orders (user_id, total_amount) SELECT id, 5 FROM users WHERE email = 'user1@test.com' RETURNING id)
       INSERT INTO order_items (order_id, product_id, quantity, unit_price) SELECT o.id, p.id, 1, 5 FROM o, (SELECT min(id) AS id FROM products WHERE sku <> 'REAL-1') p`,
    );
    const before = await counts();
    const kept = await seedDatabase({ postgres }, { seed: 42, ifEmpty: true });
    assert.deepEqual([kept.kept, kept.rows], [2, 0], "two batches present: kept");
    assert.deepEqual(await counts(), before);
    await assert.rejects(seedDatabase({ postgres }, { seed: 42 }), (e: Error) => /^the seed data cannot be replaced: data created since refers to it \(Key .*\)\. Nothing was changed\. Keep it and add a batch \(make seed SEED_ARGS=--append\), or start from an empty schema \(make reset-db, then make seed\)\.$/.test(e.message));
    assert.deepEqual(await counts(), before, "the failed replace rolled back");
  });

  it("--if-empty seeds a database without seed data", async () => {
    const fresh = await createMigratedDatabase(outputs, `shopfds_seed_empty_${process.pid}`);
    try {
      const r = await seedDatabase({ postgres: fresh.postgres }, { seed: 42, ifEmpty: true, counts: { users: 20, products: 10, orders: 40, reviews: 5, carts: 3, blacklistedIps: 2 } });
      assert.equal(r.kept, undefined);
      assert.ok(r.rows > 0);
    } finally {
      await fresh.drop();
    }
  });

  it("refuses a production stack without --force-production, writing nothing", async () => {
    const before = await counts();
    await assert.rejects(
      promisify(execFile)(process.execPath, ["--import", "tsx", "service/bin/seed.ts"], { cwd: ROOT, env: { ...process.env, SHOPFDS_PULUMI_STACK: "prod" } }),
      (e: { code: number; stderr: string }) => e.code === 1 && /refusing to seed Pulumi stack prod: seed data is for development; pass --force-production/.test(e.stderr),
    );
    assert.deepEqual(await counts(), before);
  });
});
