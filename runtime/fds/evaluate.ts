/**
 * The FDS decision: a small, explicit rule set, each rule its own function returning its risk factors.
 *
 *   blacklist   any listed IP, e-mail or card → score 100: high, block (US2 scenario 2)
 *   allowlist   an allow entry of the IP, e-mail or card sets aside the block entries of that same value
 *               → score 0, named in the factors with the blocks it set aside (the other rules still count)
 *   amount      ≥ highAmount → 30, ≥ veryHighAmount → 50
 *   velocity    more than `velocityLimit` transactions per user, IP or card in the current window → 40
 *               each (counted in Redis, so every instance shares the counts)
 *
 * Score = the sum, capped at 100; level low ≤ 30 < medium ≤ 70 < high; decision approve / additional
 * authentication / block. When neither Redis nor PostgreSQL can answer the blacklist, the transaction
 * is not approved blindly: it scores 50 (additional authentication).
 */
import type { Cluster } from "ioredis";
import { z } from "zod";
import { Blacklist, BlacklistUnavailableError, CheckResult } from "./blacklist";
import { withTimeout } from "../timeout";
import { canonicalEmail, canonicalIp, cardDigits, cardHash, CardHashKey, InvalidValueError } from "./canonical";

export type RiskLevel = "low" | "medium" | "high";
export type Decision = "approve" | "additional_auth" | "block";

export interface Transaction {
  readonly userId?: string | number;
  /** In the currency's main unit (KRW: won). */
  readonly amount: number;
  readonly ip: string;
  readonly email: string;
  readonly card?: string;
}

export interface RiskFactor {
  readonly rule: "blacklist" | "allowlist" | "blacklist_unavailable" | "amount" | "velocity";
  readonly score: number;
  readonly detail: Readonly<Record<string, unknown>>;
}

export interface Evaluation {
  readonly score: number;
  readonly level: RiskLevel;
  readonly decision: Decision;
  readonly factors: readonly RiskFactor[];
  /** Who answered the blacklist check, when it was answered. */
  readonly blacklistSource?: CheckResult["source"];
  readonly elapsedMs: number;
}

export interface FdsRulesOptions {
  /** @default 1_000_000 */
  readonly highAmount?: number;
  /** @default 5_000_000 */
  readonly veryHighAmount?: number;
  /** Length of a velocity window. @default 600 */
  readonly velocityWindowSeconds?: number;
  /** Transactions allowed per user, IP or card in one window. @default 5 */
  readonly velocityLimit?: number;
  /** @default "fds:vel:" */
  readonly velocityKeyPrefix?: string;
  /** How long velocity counting may take before the rule is skipped (Redis unavailable). @default 300 */
  readonly velocityTimeoutMs?: number;
}

export const levelFor = (score: number): RiskLevel => (score <= 30 ? "low" : score <= 70 ? "medium" : "high");
export const decisionFor = (level: RiskLevel): Decision => (level === "low" ? "approve" : level === "medium" ? "additional_auth" : "block");

/** The score, level and decision of a set of factors: a blacklist hit is 100, otherwise the capped sum. */
export function combineFactors(factors: readonly RiskFactor[]): { score: number; level: RiskLevel; decision: Decision } {
  const score = factors.some((f) => f.rule === "blacklist") ? 100 : Math.min(100, factors.reduce((n, f) => n + f.score, 0));
  const level = levelFor(score);
  return { score, level, decision: decisionFor(level) };
}

export function blacklistRule(result: CheckResult): RiskFactor[] {
  const factors: RiskFactor[] = [];
  if (result.listed) factors.push({ rule: "blacklist", score: 100, detail: { matched: result.matches.map((m) => ({ type: m.type, reason: m.reason })) } });
  // Stated in the reasons: which allow entries won over which block entries of their value.
  if (result.overridden.length > 0)
    factors.push({ rule: "allowlist", score: 0, detail: { allowed: result.allowed.map((a) => ({ type: a.type, reason: a.reason })), overrode: result.overridden.map((b) => ({ type: b.type, reason: b.reason })) } });
  return factors;
}

export function amountRule(amount: number, o: Required<FdsRulesOptions>): RiskFactor[] {
  if (amount >= o.veryHighAmount) return [{ rule: "amount", score: 50, detail: { amount, threshold: o.veryHighAmount } }];
  if (amount >= o.highAmount) return [{ rule: "amount", score: 30, detail: { amount, threshold: o.highAmount } }];
  return [];
}

export function velocityRule(counts: Readonly<Record<string, number>>, o: Required<FdsRulesOptions>): RiskFactor[] {
  return Object.entries(counts)
    .filter(([, n]) => n > o.velocityLimit)
    .map(([dimension, n]) => ({ rule: "velocity" as const, score: 40, detail: { dimension, count: n, limit: o.velocityLimit, windowSeconds: o.velocityWindowSeconds } }));
}

const transactionSchema = z.object({
  userId: z.union([z.string().min(1), z.number().int().nonnegative()]).optional(),
  amount: z.number({ error: (i) => `must be a number (got ${JSON.stringify(i.input)})` }).finite().nonnegative({ error: (i) => `must not be negative (got ${JSON.stringify(i.input)})` }),
  ip: z.string({ error: "must be a string" }),
  email: z.string({ error: "must be a string" }),
  card: z.string({ error: "must be a string" }).optional(),
});

export const FDS_RULE_DEFAULTS: Required<FdsRulesOptions> = { highAmount: 1_000_000, veryHighAmount: 5_000_000, velocityWindowSeconds: 600, velocityLimit: 5, velocityKeyPrefix: "fds:vel:", velocityTimeoutMs: 300 };

/**
 * A velocity count: INCR, and the window's expiry when the key is new, as one script on the key's
 * master. One command and one reply per dimension (an INCR + EXPIRE pipeline built a pipeline object and
 * sent two), and atomic: no key is ever left without its expiry. Sent as EVALSHA; ioredis falls back to
 * EVAL on a master that has not seen it (a promoted replica).
 */
const VELOCITY_COMMAND = "shopfdsVelocityCount";
const VELOCITY_SCRIPT = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n`;
type VelocityClient = Cluster & { [VELOCITY_COMMAND]: (key: string, ttlSeconds: number) => Promise<number> };

export class FraudDetector {
  private readonly options: Required<FdsRulesOptions>;
  private readonly cardKey: CardHashKey;

  constructor(
    private readonly blacklist: Blacklist,
    private readonly redis: Cluster,
    cardHashKeys: readonly CardHashKey[],
    options: FdsRulesOptions = {},
  ) {
    this.options = { ...FDS_RULE_DEFAULTS, ...options };
    this.cardKey = [...cardHashKeys].sort((a, b) => b.version - a.version)[0] as CardHashKey;
    if (!(VELOCITY_COMMAND in redis)) redis.defineCommand(VELOCITY_COMMAND, { numberOfKeys: 1, lua: VELOCITY_SCRIPT });
  }

  async evaluate(input: Transaction): Promise<Evaluation> {
    const started = performance.now();
    const parsed = transactionSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new InvalidValueError(issue.path.map(String).join(".") || "transaction", issue.message);
    }
    const tx = parsed.data;
    // Canonicalise once; these throw InvalidValueError naming the field.
    const ip = canonicalIp(tx.ip);
    const email = canonicalEmail(tx.email);
    const card = tx.card !== undefined ? cardDigits(tx.card) : undefined;

    const [check, counts] = await Promise.all([
      this.blacklist.check({ ip, email, ...(card ? { card } : {}) }).catch((error: unknown) => {
        if (error instanceof BlacklistUnavailableError) return undefined;
        throw error;
      }),
      this.velocityWithin({ ...(tx.userId !== undefined ? { user: String(tx.userId) } : {}), ip, ...(card ? { card: cardHash(card, this.cardKey) } : {}) }),
    ]);

    const factors: RiskFactor[] = check
      ? [...blacklistRule(check), ...amountRule(tx.amount, this.options), ...velocityRule(counts, this.options)]
      : [{ rule: "blacklist_unavailable", score: 50, detail: {} }, ...amountRule(tx.amount, this.options), ...velocityRule(counts, this.options)];
    return { ...combineFactors(factors), factors, ...(check ? { blacklistSource: check.source } : {}), elapsedMs: performance.now() - started };
  }

  private velocityWithin(dimensions: Record<string, string>): Promise<Record<string, number>> {
    return withTimeout(this.velocity(dimensions), this.options.velocityTimeoutMs, "velocity").catch(() => ({}));
  }

  /** Counts this transaction in each dimension's current window; an unavailable Redis counts nothing. */
  private async velocity(dimensions: Record<string, string>): Promise<Record<string, number>> {
    const window = this.options.velocityWindowSeconds;
    const bucket = Math.floor(Date.now() / 1000 / window);
    const entries = await Promise.all(
      Object.entries(dimensions).map(async ([dimension, value]): Promise<[string, number] | undefined> => {
        const key = `${this.options.velocityKeyPrefix}${dimension}:${value}:${bucket}`;
        try {
          return [dimension, Number(await (this.redis as VelocityClient)[VELOCITY_COMMAND](key, window * 2))];
        } catch {
          return undefined;
        }
      }),
    );
    return Object.fromEntries(entries.filter((e): e is [string, number] => e !== undefined));
  }
}
