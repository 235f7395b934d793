/** Layer 1: canonical forms of blacklisted values, the card hash, and the FDS rules as pure functions. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalEmail, canonicalIp, cardDigits, cardHash, InvalidValueError, luhnValid } from "../../runtime/fds/canonical";
import { amountRule, blacklistRule, combineFactors, decisionFor, levelFor, velocityRule } from "../../runtime/fds/evaluate";

const rejects = (fn: () => unknown, field: string, problem: string) =>
  assert.throws(fn, (e: Error) => e instanceof InvalidValueError && e.field === field && e.message === `${field}: ${problem}`);

describe("canonicalIp", () => {
  const same: [string, string][] = [
    ["192.0.2.1", "192.0.2.1"],
    [" 192.0.2.1 ", "192.0.2.1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:db8::0:1", "2001:db8::1"],
    ["::ffff:192.0.2.1", "192.0.2.1"],
    ["::1", "::1"],
  ];
  for (const [input, canonical] of same) it(`${JSON.stringify(input)} → ${canonical}`, () => assert.equal(canonicalIp(input), canonical));

  for (const bad of ["127.1", "1.2.3.256", "0x7f.0.0.1", "fe80::1%eth0", "", "example.com"]) {
    it(`rejects ${JSON.stringify(bad)}`, () => rejects(() => canonicalIp(bad), "ip", `must be an IPv4 or IPv6 address (got ${JSON.stringify(bad)})`));
  }
  it("rejects a non-string, naming the field given", () => rejects(() => canonicalIp(42, "order.ip"), "order.ip", "must be a string (got number)"));
});

describe("canonicalEmail", () => {
  it("trims and lower-cases", () => assert.equal(canonicalEmail("  Fraud@Example.COM "), "fraud@example.com"));
  for (const bad of ["no-at-sign", "a@", "@b.com", "a b@c.com"]) {
    it(`rejects ${JSON.stringify(bad)}`, () => rejects(() => canonicalEmail(bad), "email", `must be an e-mail address (got ${JSON.stringify(bad)})`));
  }
});

describe("card numbers", () => {
  it("accepts digits with spaces or dashes and checks Luhn", () => {
    assert.equal(cardDigits("4111 1111-1111 1111"), "4111111111111111");
    assert.equal(luhnValid("4111111111111111"), true);
    assert.equal(luhnValid("4111111111111112"), false);
  });
  it("rejects a failed Luhn check without echoing the number", () => rejects(() => cardDigits("4111111111111112"), "card", "fails the Luhn check (mistyped number?)"));
  it("rejects a wrong length", () => rejects(() => cardDigits("41111111"), "card", "must have 12 to 19 digits (got 8)"));
  it("rejects letters", () => rejects(() => cardDigits("4111x11111111111"), "card", "must contain only digits, spaces and dashes"));

  it("hashes with a key (HMAC-SHA-256): a different key version gives a different hash, the same key the same", () => {
    const k1 = { version: 1, key: "11".repeat(32) };
    const k2 = { version: 2, key: "22".repeat(32) };
    const h1 = cardHash("4111111111111111", k1);
    assert.match(h1, /^[0-9a-f]{64}$/);
    assert.equal(cardHash("4111111111111111", k1), h1);
    assert.notEqual(cardHash("4111111111111111", k2), h1);
    // A bare SHA-256 would be brute-forceable; the keyed hash must differ from it.
    assert.notEqual(h1, require("node:crypto").createHash("sha256").update("4111111111111111").digest("hex"));
  });
});

describe("FDS rules", () => {
  const o = { highAmount: 1_000_000, veryHighAmount: 5_000_000, velocityWindowSeconds: 600, velocityLimit: 5, velocityKeyPrefix: "v:", velocityTimeoutMs: 300 };
  it("levels: low ≤ 30 < medium ≤ 70 < high; decisions follow", () => {
    assert.deepEqual([0, 30, 31, 70, 71, 100].map(levelFor), ["low", "low", "medium", "medium", "high", "high"]);
    assert.deepEqual((["low", "medium", "high"] as const).map(decisionFor), ["approve", "additional_auth", "block"]);
  });
  it("amount: 30 from the high threshold, 50 from the very high one", () => {
    assert.deepEqual(amountRule(999_999, o), []);
    assert.equal(amountRule(1_000_000, o)[0]?.score, 30);
    assert.equal(amountRule(5_000_000, o)[0]?.score, 50);
  });
  it("velocity: 40 per dimension over the limit", () => {
    assert.deepEqual(velocityRule({ user: 5, ip: 6, card: 9 }, o).map((f) => [f.detail.dimension, f.score]), [["ip", 40], ["card", 40]]);
  });
  it("blacklist: any match scores 100", () => {
    const hit = { listed: true, matches: [{ kind: "block" as const, type: "ip" as const, value: "1.2.3.4", reason: "chargeback", source: "manual", createdAt: new Date(), expiresAt: new Date() }], allowed: [], overridden: [], source: "redis" as const };
    assert.deepEqual(blacklistRule(hit), [{ rule: "blacklist", score: 100, detail: { matched: [{ type: "ip", reason: "chargeback" }] } }]);
    assert.deepEqual(blacklistRule({ listed: false, matches: [], allowed: [], overridden: [], source: "redis" }), []);
  });
  it("allowlist: an allow that set a block aside is named with it, scoring nothing", () => {
    const entry = (kind: "block" | "allow", reason: string) => ({ kind, type: "email" as const, value: "a@b.test", reason, source: "manual", createdAt: new Date(), expiresAt: new Date() });
    const factors = blacklistRule({ listed: false, matches: [], allowed: [entry("allow", "vip customer")], overridden: [entry("block", "chargebacks")], source: "redis" });
    assert.deepEqual(factors, [{ rule: "allowlist", score: 0, detail: { allowed: [{ type: "email", reason: "vip customer" }], overrode: [{ type: "email", reason: "chargebacks" }] } }]);
    assert.equal(combineFactors(factors).decision, "approve");
  });
});
