/**
 * The value rules that the stack settings (components/config.ts), the renderers (components/validation.ts)
 * and the outputs contract (outputs.ts) share, each defined once: a zod schema for the parsers, a
 * predicate for the renderers' collect-then-throw checks, and the one message that names the problem.
 */
import { z } from "zod";

export interface ValueRule<T> {
  /** What a wrong value is told, after its field's name. */
  readonly message: string;
  /** For zod parsers (stack settings, outputs): refuses with `message`. */
  readonly schema: z.ZodType<T>;
  test(value: unknown): value is T;
}

function rule<T>(message: string, schema: z.ZodType<T>): ValueRule<T> {
  return { message, schema, test: (value: unknown): value is T => schema.safeParse(value).success };
}

const integer = (min: number, max: number, message: string) => z.number({ error: message }).int(message).min(min, message).max(max, message);

export const RULES = {
  /** A TCP port. */
  port: rule("must be an integer from 1 to 65535", integer(1, 65535, "must be an integer from 1 to 65535")),
  /** An SQL identifier safe to embed (still quoted): a database, a role. */
  identifier: rule(
    "must be a lower-case SQL identifier (letters, digits, _; at most 63)",
    z.string({ error: "must be a lower-case SQL identifier (letters, digits, _; at most 63)" }).regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier (letters, digits, _; at most 63)"),
  ),
  /** A size in postgresql.conf's units. */
  pgSize: rule(
    "must be a PostgreSQL size such as 128MB (units kB, MB, GB, TB)",
    z.string({ error: "must be a PostgreSQL size such as 128MB (units kB, MB, GB, TB)" }).regex(/^\d+(kB|MB|GB|TB)$/, "must be a PostgreSQL size such as 128MB (units kB, MB, GB, TB)"),
  ),
  /** A size in redis.conf's units. */
  redisSize: rule("must be a Redis size such as 256mb", z.string({ error: "must be a Redis size such as 256mb" }).regex(/^\d+(kb|mb|gb)$/, "must be a Redis size such as 256mb")),
  /** Redis Cluster's cluster-node-timeout: failover takes about 1.7 × it + 0.7 s, and FR-014 allows 10 s. */
  redisNodeTimeoutMs: rule(
    "must be an integer from 500 to 5000 (failover takes about 1.7 × it + 0.7 s; FR-014 allows 10 s)",
    integer(500, 5000, "must be an integer from 500 to 5000 (failover takes about 1.7 × it + 0.7 s; FR-014 allows 10 s)"),
  ),
} as const;
