/**
 * `make seed` (and scripts/load-fixtures.sh): fills the stack's database with the ShopFDS seed data set
 * (see seed/generate.ts), deterministic for a seed value. A rerun replaces the previous seed data and
 * nothing else (and refuses, changing nothing, when data created since refers to it); `--append` adds
 * another batch; `--if-empty` seeds only a database without seed data, keeping everything otherwise
 * (what `make dev` runs, so a restart keeps the orders people placed). Blacklisted IPs also go to Redis
 * (and the ones a rerun removes leave it). Refuses a production stack unless `--force-production`.
 *
 *   node --import tsx service/bin/seed.ts [--seed 42] [--append | --if-empty] [--force-production]
 */
import pg from "pg";
import { pgSsl } from "@shopfds/runtime/db";
import { loadStackOutputs, type StackOutputs } from "@shopfds/runtime";
import { connectRedisCluster } from "@shopfds/runtime/redis";
import { FULL, generate, type SeedCounts } from "../seed/generate";
import { deleteBatches, insertBatch, lockTables } from "../seed/load";

export interface SeedOptions {
  readonly seed?: number;
  readonly append?: boolean;
  /** Seed only a database that has no seed batch yet; otherwise keep everything (what `make dev` runs). */
  readonly ifEmpty?: boolean;
  readonly counts?: SeedCounts;
  readonly progress?: (line: string) => void;
}

export interface SeedResult {
  readonly rows: number;
  /** `ifEmpty` and seed data present: nothing was written. */
  readonly kept?: number;
  readonly removedBatches: number;
  readonly ms: number;
}

export async function seedDatabase(outputs: Pick<StackOutputs, "postgres"> & Partial<Pick<StackOutputs, "redis">>, o: SeedOptions = {}): Promise<SeedResult> {
  const started = performance.now();
  const progress = o.progress ?? (() => undefined);
  const seed = o.seed ?? 42;
  const { Faker, en } = await import("@faker-js/faker");
  const { primary, database, user, password, tls } = outputs.postgres;
  const ssl = pgSsl(tls);
  const client = new pg.Client({ host: primary.host, port: primary.port, database, user, password, ...(ssl ? { ssl } : {}), application_name: "shopfds-seed" });
  await client.connect();
  let removed = { batches: 0, blacklisted: [] as { type: string; value: string }[] };
  let result: { rows: number };
  try {
    await client.query("BEGIN");
    await lockTables(client);
    if (o.ifEmpty) {
      const present = Number((await client.query<{ n: number }>("SELECT count(*)::int AS n FROM seed_batches")).rows[0]!.n);
      if (present > 0) {
        await client.query("ROLLBACK");
        return { rows: 0, kept: present, removedBatches: 0, ms: performance.now() - started };
      }
    }
    if (!o.append) removed = await deleteBatches(client, progress).catch((error: { code?: string; detail?: string }) => {
      // Orders placed through the service (or other data people made) point at seed users or products.
      if (error.code === "23503") {
        throw new Error(
          `the seed data cannot be replaced: data created since refers to it (${error.detail ?? "a foreign key"}). Nothing was changed. ` +
            "Keep it and add a batch (make seed SEED_ARGS=--append), or start from an empty schema (make reset-db, then make seed).",
        );
      }
      throw error;
    });
    const { rows } = await client.query<{ n: number; b: number }>(
      "SELECT count(*)::int AS b, coalesce(sum(jsonb_extract_path_text(ranges, 'users', '1')::int - jsonb_extract_path_text(ranges, 'users', '0')::int + 1), 0)::int AS n FROM seed_batches",
    );
    const f = new Faker({ locale: [en] });
    // Each batch gets its own stream of values; the first batch of a seed is always the same.
    f.seed(seed + 7919 * rows[0]!.b);
    const data = generate(f, o.counts ?? FULL, rows[0]!.n + 1, rows[0]!.b + 1);
    progress("generated");
    result = await insertBatch(client, data, seed, progress);
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
  if (outputs.redis) {
    // Redis follows PostgreSQL: removed seed entries leave it, the batch's entries join it.
    const redis = connectRedisCluster(outputs.redis);
    try {
      for (const r of removed.blacklisted) await redis.del(`fds:bl:${r.type}:${r.value}`);
      const client2 = new pg.Client({ host: primary.host, port: primary.port, database, user, password });
      await client2.connect();
      try {
        const { rows } = await client2.query("SELECT entry_type, value, reason, source, created_at, expires_at FROM blacklist_entries WHERE source = 'seed' AND kind = 'block' AND expires_at > now()");
        for (const e of rows) {
          await redis.set(`fds:bl:${e.entry_type}:${e.value}`, JSON.stringify({ r: e.reason, s: e.source, c: e.created_at.getTime(), e: e.expires_at.getTime() }), "PXAT", e.expires_at.getTime());
        }
      } finally {
        await client2.end();
      }
    } finally {
      redis.disconnect();
    }
  }
  return { rows: result.rows, removedBatches: removed.batches, ms: performance.now() - started };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const unknown = args.filter((a, i) => !["--seed", "--append", "--if-empty", "--force-production"].includes(a) && args[i - 1] !== "--seed");
  if (unknown.length) throw new Error(`unknown argument ${unknown[0]} (expected --seed N, --append, --if-empty, --force-production)`);
  const i = args.indexOf("--seed");
  const seed = i >= 0 ? Number(args[i + 1]) : 42;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed: must be a non-negative integer (got ${args[i + 1]})`);
  const stack = process.env.SHOPFDS_PULUMI_STACK ?? "";
  if (/^prod/i.test(stack) && !args.includes("--force-production")) {
    throw new Error(`refusing to seed Pulumi stack ${stack}: seed data is for development; pass --force-production if you really mean it`);
  }
  const tty = process.stdout.isTTY;
  const progress = (line: string) => (tty ? process.stdout.write(`\r\x1b[K  seeding… ${line}`) : console.log(`  ${line}`));
  const r = await seedDatabase(await loadStackOutputs(), { seed, append: args.includes("--append"), ifEmpty: args.includes("--if-empty"), progress });
  if (tty) process.stdout.write("\r\x1b[K");
  if (r.kept) {
    console.log(`seed data present (${r.kept} batch(es)): kept, with everything created since (make seed replaces it)`);
    return;
  }
  console.log(`seeded ${r.rows} rows in ${(r.ms / 1000).toFixed(2)} s (${Math.round(r.rows / (r.ms / 1000))} rows/s)${r.removedBatches ? `, replacing ${r.removedBatches} earlier batch(es)` : ""}`);
}

if (require.main === module) {
  main().catch((e: Error) => {
    console.error(`seed: ${e.message}`);
    process.exitCode = 1;
  });
}
