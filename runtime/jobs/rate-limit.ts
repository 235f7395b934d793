/** Celery's task rate limits ("10/s", "100/m", "5/h", or a number per second) as a minimum gap between starts. */
export function parseRateLimit(value: unknown): number | null {
  if (value === null || value === undefined || value === "" || value === 0 || value === "0") return null;
  if (typeof value === "number" && Number.isFinite(value) && value > 0) return 1000 / value;
  const m = typeof value === "string" ? /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*([smh]))?\s*$/.exec(value) : null;
  if (!m) throw new TypeError(`rate_limit: must be like "10/s", "100/m" or "5/h" (got ${JSON.stringify(value)})`);
  const per = Number(m[1]);
  if (per === 0) return null;
  return ({ s: 1000, m: 60_000, h: 3_600_000 } as const)[(m[2] ?? "s") as "s" | "m" | "h"] / per;
}
