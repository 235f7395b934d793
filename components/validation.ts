/**
 * Collect-then-throw validation for the pure renderers: every problem is gathered and reported at
 * once, each naming the field and what is wrong with its value (Bitnami's `validateValues` habit).
 */
import { RULES, type ValueRule } from "../runtime/rules";

export { RULES };

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

  /** Records `field: <the rule's message> (got value)` unless `value` follows one of the shared RULES. */
  rule(field: string, rule: ValueRule<unknown>, value: unknown): void {
    this.check(rule.test(value), field, rule.message, value);
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

/** The shared rules (runtime/rules.ts), as predicates. */
export const isPort = RULES.port.test;
export const isPgSize = RULES.pgSize.test;
export const isIdentifier = RULES.identifier.test;
/** A host name or IP literal safe to embed in a conninfo string and a shell script. */
export const isHost = (s: unknown): s is string => typeof s === "string" && /^[A-Za-z0-9]([A-Za-z0-9.\-:]{0,252})$/.test(s);
/** An absolute path safe to embed single-quoted in shell and postgresql.conf. */
export const isSafePath = (s: unknown): s is string => typeof s === "string" && /^\/[A-Za-z0-9._\-/]*$/.test(s);
