/** Layer 1: which statements may go to a replica. When in doubt, the primary. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isReadOnlyStatement } from "../../runtime/db/classify";

const replica = [
  "SELECT * FROM orders WHERE id = $1",
  "select count(*) from orders",
  "  SELECT lower(email), coalesce(name, 'x') FROM users -- comment with UPDATE\n",
  "WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '1 day') SELECT count(*) FROM recent",
  "SELECT 'DELETE FROM users; UPDATE x' AS text",
  "SELECT $$ INSERT $$ AS dollar",
  'SELECT "update" FROM t',
  "SHOW max_connections",
  "SELECT id FROM orders ORDER BY created_at DESC LIMIT 10;",
  "SELECT amount::numeric(10,2) FROM payments",
  "SELECT pg_is_in_recovery()",
  "(SELECT 1) UNION (SELECT 2)",
  "TABLE products",
];
const primary = [
  "INSERT INTO orders (id) VALUES (1)",
  "UPDATE orders SET status = 'paid'",
  "DELETE FROM carts",
  "SELECT * FROM orders WHERE id = 1 FOR UPDATE",
  "SELECT * FROM orders FOR NO KEY UPDATE",
  "select * from orders for share",
  "WITH moved AS (DELETE FROM carts RETURNING *) SELECT count(*) FROM moved",
  "SELECT nextval('orders_id_seq')",
  "SELECT my_schema.do_things()",
  "SELECT refresh_report(1)",
  "SELECT pg_advisory_lock(1)",
  "SELECT * INTO backup FROM orders",
  "SELECT 1; DELETE FROM orders",
  "BEGIN",
  "SELECT 'unterminated",
  "/* unterminated comment SELECT 1",
  "SET search_path TO x",
  "EXPLAIN ANALYZE DELETE FROM orders",
  "",
];

describe("isReadOnlyStatement", () => {
  for (const sql of replica) it(`replica: ${JSON.stringify(sql)}`, () => assert.equal(isReadOnlyStatement(sql), true));
  for (const sql of primary) it(`primary: ${JSON.stringify(sql)}`, () => assert.equal(isReadOnlyStatement(sql), false));
  it("lets a caller vet its own side-effect-free functions", () => {
    assert.equal(isReadOnlyStatement("SELECT risk_level(score) FROM fds_transactions"), false);
    assert.equal(isReadOnlyStatement("SELECT risk_level(score) FROM fds_transactions", { readOnlyFunctions: new Set(["risk_level"]) }), true);
  });
});
