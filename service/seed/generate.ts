/**
 * The seed data set, generated deterministically from a seed value with faker (FR-004, FR-005):
 * users, products, orders with items and payments, reviews by buyers, carts, and one FDS transaction
 * per order — exactly 85 % normal, 10 % suspicious, 5 % fraudulent, scored consistently with the
 * runtime's rules (levelFor/decisionFor), the fraudulent ones from blacklisted IPs. Pure: no database.
 */
import type { Faker } from "@faker-js/faker";
import { decisionFor, levelFor } from "@shopfds/runtime/fds";

export interface SeedCounts {
  readonly users: number;
  readonly products: number;
  readonly orders: number;
  readonly reviews: number;
  readonly carts: number;
  readonly blacklistedIps: number;
}

export const FULL: SeedCounts = { users: 1000, products: 500, orders: 10_000, reviews: 5000, carts: 300, blacklistedIps: 20 };

export interface SeedData {
  users: { email: string; name: string; createdAt: Date }[];
  products: { sku: string; name: string; category: string; price: number; description: string }[];
  orders: {
    user: number;
    items: { product: number; quantity: number; price: number }[];
    total: number;
    status: string;
    createdAt: Date;
    payment: { method: string; last4: string | null };
    fds: { ip: string; score: number; level: string; decision: string; factors: { factor: string; score: number; detail: object }[] };
  }[];
  reviews: { product: number; user: number; rating: number; title: string; body: string }[];
  carts: { user: number; items: { product: number; quantity: number }[] }[];
  blacklistedIps: string[];
}

/** `firstUser` numbers the users (`user{N}@test.com`) after earlier batches; `batch` tags SKUs. */
export function generate(f: Faker, counts: SeedCounts, firstUser: number, batch: number): SeedData {
  const now = Date.UTC(2026, 10, 1);
  const day = 86_400_000;
  const users = Array.from({ length: counts.users }, (_, i) => ({
    email: `user${firstUser + i}@test.com`,
    name: f.person.fullName(),
    createdAt: new Date(now - f.number.int({ min: 100, max: 700 }) * day),
  }));
  const products = Array.from({ length: counts.products }, (_, i) => ({
    sku: `SEED-${batch}-${String(i + 1).padStart(5, "0")}`,
    name: f.commerce.productName(),
    category: f.commerce.department(),
    description: f.commerce.productDescription(),
    // KRW, whole won, from 1,000 to 2,000,000.
    price: f.number.int({ min: 1, max: 2000 }) * 1000,
  }));
  const blacklistedIps = Array.from({ length: counts.blacklistedIps }, (_, i) => `203.0.113.${i + 1}`);

  // Exactly 85 / 10 / 5 %, in a seeded random order.
  const suspicious = Math.round(counts.orders * 0.1);
  const fraudulent = Math.round(counts.orders * 0.05);
  const classes = f.helpers.shuffle([
    ...Array<string>(counts.orders - suspicious - fraudulent).fill("normal"),
    ...Array<string>(suspicious).fill("suspicious"),
    ...Array<string>(fraudulent).fill("fraudulent"),
  ]);
  const orders = classes.map((cls) => {
    const lineCount = f.number.int({ min: 1, max: 4 });
    const picked = f.helpers.arrayElements(products.map((_, i) => i), lineCount);
    const items = picked.map((p) => ({ product: p, quantity: f.number.int({ min: 1, max: 3 }), price: products[p]!.price }));
    const total = items.reduce((n, it) => n + it.price * it.quantity, 0);
    let score: number;
    let factors: { factor: string; score: number; detail: object }[] = [];
    let ip = f.internet.ipv4();
    if (cls === "normal") score = f.number.int({ min: 0, max: 30 });
    else if (cls === "suspicious") {
      score = f.number.int({ min: 31, max: 70 });
      factors = [{ factor: total >= 1_000_000 ? "amount" : "velocity", score, detail: { total } }];
    } else {
      score = 100;
      ip = f.helpers.arrayElement(blacklistedIps);
      factors = [{ factor: "blacklist", score: 100, detail: { type: "ip", value: ip } }];
    }
    const level = levelFor(score);
    const blocked = decisionFor(level) === "block";
    return {
      user: f.number.int({ min: 0, max: counts.users - 1 }),
      items,
      total,
      status: blocked ? "cancelled" : f.helpers.weightedArrayElement([{ weight: 6, value: "delivered" }, { weight: 2, value: "shipped" }, { weight: 2, value: "paid" }]),
      createdAt: new Date(now - f.number.int({ min: 0, max: 89 * 86_400 }) * 1000),
      payment: f.helpers.weightedArrayElement([
        { weight: 8, value: { method: "card", last4: f.string.numeric(4) } },
        { weight: 1, value: { method: "bank_transfer", last4: null } },
        { weight: 1, value: { method: "wallet", last4: null } },
      ]),
      fds: { ip, score, level, decision: decisionFor(level), factors },
    };
  });

  // Reviews only by users who bought the product, one per (product, user).
  const bought = new Map<string, { product: number; user: number }>();
  for (const o of orders) if (o.status !== "cancelled") for (const it of o.items) bought.set(`${it.product}:${o.user}`, { product: it.product, user: o.user });
  const reviews = f.helpers.arrayElements([...bought.values()], Math.min(counts.reviews, bought.size)).map((b) => ({
    ...b,
    rating: f.helpers.weightedArrayElement([{ weight: 1, value: 1 }, { weight: 1, value: 2 }, { weight: 2, value: 3 }, { weight: 4, value: 4 }, { weight: 4, value: 5 }]),
    title: f.lorem.words({ min: 2, max: 5 }),
    body: f.lorem.sentence(),
  }));

  const carts = f.helpers.arrayElements(users.map((_, i) => i), counts.carts).map((user) => ({
    user,
    items: f.helpers.arrayElements(products.map((_, i) => i), f.number.int({ min: 1, max: 3 })).map((product) => ({ product, quantity: f.number.int({ min: 1, max: 2 }) })),
  }));
  return { users, products, orders, reviews, carts, blacklistedIps };
}
