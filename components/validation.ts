/**
 * Collect-then-throw validation for the pure renderers: every problem is gathered and reported at
 * once, each naming the field and what is wrong with its value (Bitnami's `validateValues` habit).
 */
export class InvalidSettingsError extends Error {
  constructor(
    readonly subject: string,
    readonly problems: readonly string[],
  ) {
    super(`${subject}: ${problems.length} invalid setting${problems.length === 1 ? "" : "s"}:\n  - ${problems.join("\n  - ")}`);
    this.name = "InvalidSettingsError";
  }
}

export class Problems {
  private readonly list: string[] = [];
  constructor(private readonly subject: string) {}

  /** Records `field: message (got value)` unless `ok` holds. */
  check(ok: boolean, field: string, message: string, value: unknown): void {
    if (!ok) this.list.push(`${field}: ${message} (got ${describe(value)})`);
  }

  throwIfAny(): void {
    if (this.list.length > 0) throw new InvalidSettingsError(this.subject, this.list);
  }
}

export function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string") return JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

export const isPort = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;
/** PostgreSQL memory units, as postgresql.conf accepts them. */
export const isPgSize = (s: unknown): s is string => typeof s === "string" && /^\d+(kB|MB|GB|TB)$/.test(s);
/** An SQL identifier we are willing to embed unquoted-safe (we still quote it). */
export const isIdentifier = (s: unknown): s is string => typeof s === "string" && /^[a-z_][a-z0-9_]{0,62}$/.test(s);
/** A host name or IP literal safe to embed in a conninfo string and a shell script. */
export const isHost = (s: unknown): s is string => typeof s === "string" && /^[A-Za-z0-9]([A-Za-z0-9.\-:]{0,252})$/.test(s);
/** An absolute path safe to embed single-quoted in shell and postgresql.conf. */
export const isSafePath = (s: unknown): s is string => typeof s === "string" && /^\/[A-Za-z0-9._\-/]*$/.test(s);
