/**
 * The nightly FDS batch (FR-017), the reference service's (it re-scores the shop's own `fds_transactions`): the whole rule set re-run over the last 24 hours of transactions, with
 * what is known now. The real-time path may have decided without the blacklist (Redis and PostgreSQL
 * unreachable: `blacklist_unavailable`), before an entry was added, or on approximate velocity buckets;
 * the batch re-runs the same rules (the runtime's fds rules: blacklist, amount, velocity, the same combination) on
 * the database: active blacklist entries, exact velocity counts over each transaction's window.
 *
 * - Escalation only: a decision already acted on is never relaxed after the fact; a transaction whose
 *   score rises gets its new score, level, decision and factors, and a row in `fds_reevaluations`
 *   (before and after), so the change is on record and reviewable.
 * - Idempotent per slot: `fds_reevaluations` is unique per transaction and batch slot, and a second run
 *   finds nothing higher to change.
 * - One transaction: the changes of a batch land together or not at all.
 */
import type { Database } from "@shopfds/runtime/db";
import { amountRule, blacklistRule, combineFactors, FDS_RULE_DEFAULTS, velocityRule, type CheckResult, type FdsRulesOptions, type RiskFactor } from "@shopfds/runtime/fds";

export interface BatchResult {
  readonly examined: number;
  /** Transactions whose score rose (their decision may or may not have changed). */
  readonly escalated: number;
  /** Of those, how many changed decision, by the new decision. */
  readonly decisions: Readonly<Record<string, number>>;
}

interface Row {
  id: string;
  amount: string;
  risk_score: number;
  decision: string;
  user_n: number;
  ip_n: number;
  card_n: number;
  matched: { type: string; reason: string }[];
}

/** Re-evaluates the 24 hours before `until` (the batch's slot). */
export async function reevaluateLastDay(db: Database, until: Date, rules: FdsRulesOptions = {}): Promise<BatchResult> {
  const o = { ...FDS_RULE_DEFAULTS, ...rules };
  if (!Number.isInteger(o.velocityWindowSeconds) || o.velocityWindowSeconds < 1) throw new RangeError(`velocityWindowSeconds: must be a positive integer (got ${o.velocityWindowSeconds})`);
  if (Number.isNaN(until.getTime())) throw new RangeError("until: must be a valid date");
  // Velocity counts need the transactions of one window before the day, too. The window is an integer
  // checked above, so it may be written into the statement (a window frame offset takes no parameter).
  const window = `interval '${o.velocityWindowSeconds} seconds'`;
  const frame = `ORDER BY created_at RANGE BETWEEN ${window} PRECEDING AND CURRENT ROW`;
  const { rows } = await db.query<Row>(
    `WITH base AS (
       SELECT id, user_id, amount, ip_address, email, card_hash, created_at, risk_score, decision
       FROM fds_transactions WHERE created_at >= $1::timestamptz - interval '24 hours' - ${window} AND created_at < $1::timestamptz
     ), counted AS (
       SELECT base.*,
         CASE WHEN user_id IS NULL THEN 0 ELSE count(*) OVER (PARTITION BY user_id ${frame}) END::int AS user_n,
         CASE WHEN ip_address IS NULL THEN 0 ELSE count(*) OVER (PARTITION BY ip_address ${frame}) END::int AS ip_n,
         CASE WHEN card_hash IS NULL THEN 0 ELSE count(*) OVER (PARTITION BY card_hash ${frame}) END::int AS card_n
       FROM base
     )
     SELECT c.id, c.amount, c.risk_score, c.decision, c.user_n, c.ip_n, c.card_n,
       coalesce((SELECT json_agg(json_build_object('type', b.entry_type, 'reason', b.reason) ORDER BY b.id)
                 FROM blacklist_entries b
                 WHERE b.kind = 'block' AND b.expires_at > now()
                   AND NOT EXISTS (SELECT 1 FROM blacklist_entries a WHERE a.kind = 'allow' AND a.entry_type = b.entry_type AND a.value = b.value AND a.expires_at > now())
                   AND ((b.entry_type = 'ip' AND b.value = host(c.ip_address)) OR (b.entry_type = 'email' AND b.value = c.email) OR (b.entry_type = 'card' AND b.value = c.card_hash))), '[]') AS matched
     FROM counted c WHERE c.created_at >= $1::timestamptz - interval '24 hours'
     ORDER BY c.id`,
    [until],
    { fresh: true },
  );
  const changes: { id: string; score: number; level: string; decision: string; oldScore: number; oldDecision: string; factors: RiskFactor[] }[] = [];
  for (const r of rows) {
    const listed: CheckResult = { listed: r.matched.length > 0, matches: r.matched as unknown as CheckResult["matches"], allowed: [], overridden: [], source: "postgres" };
    const counts = Object.fromEntries(
      Object.entries({ user: r.user_n, ip: r.ip_n, card: r.card_n }).filter(([, n]) => n > 0),
    );
    const factors = [...blacklistRule(listed), ...amountRule(Number(r.amount), o), ...velocityRule(counts, o)];
    const now = combineFactors(factors);
    if (now.score > r.risk_score) changes.push({ id: r.id, ...now, oldScore: r.risk_score, oldDecision: r.decision, factors });
  }
  if (changes.length > 0) {
    await db.transaction(async (tx) => {
      const recorded = await tx.query<{ transaction_id: string }>(
        `INSERT INTO fds_reevaluations (transaction_id, batch_slot, old_score, old_decision, new_score, new_decision, factors)
         SELECT c.id, $2, c.old_score, c.old_decision, c.score, c.decision, c.factors
         FROM jsonb_to_recordset($1::jsonb) AS c(id bigint, old_score smallint, old_decision fds_decision, score smallint, decision fds_decision, factors jsonb)
         ON CONFLICT (transaction_id, batch_slot) DO NOTHING
         RETURNING transaction_id`,
        [JSON.stringify(changes.map((c) => ({ id: c.id, old_score: c.oldScore, old_decision: c.oldDecision, score: c.score, decision: c.decision, factors: c.factors }))), until],
      );
      const ids = recorded.rows.map((r) => r.transaction_id);
      const mine = changes.filter((c) => ids.includes(c.id));
      await tx.query(
        `UPDATE fds_transactions t SET risk_score = c.score, risk_level = c.level, decision = c.decision
         FROM jsonb_to_recordset($1::jsonb) AS c(id bigint, score smallint, level risk_level, decision fds_decision) WHERE t.id = c.id`,
        [JSON.stringify(mine.map((c) => ({ id: c.id, score: c.score, level: c.level, decision: c.decision })))],
      );
      await tx.query("DELETE FROM fds_risk_factors WHERE transaction_id = ANY($1::bigint[])", [ids]);
      await tx.query(
        `INSERT INTO fds_risk_factors (transaction_id, factor, score, detail)
         SELECT c.id, c.factor, max(c.score), jsonb_agg(c.detail) FROM jsonb_to_recordset($1::jsonb) AS c(id bigint, factor text, score smallint, detail jsonb) GROUP BY c.id, c.factor`,
        [JSON.stringify(mine.flatMap((c) => c.factors.map((f) => ({ id: c.id, factor: f.rule, score: f.score, detail: f.detail }))))],
      );
    });
  }
  const decisions: Record<string, number> = {};
  for (const c of changes) if (c.decision !== c.oldDecision) decisions[c.decision] = (decisions[c.decision] ?? 0) + 1;
  return { examined: rows.length, escalated: changes.length, decisions };
}
