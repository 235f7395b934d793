/**
 * AMQP field tables (headers) that Python's py-amqp reads back as the values we meant.
 *
 * amqplib picks an integer's wire type by its size (`b` up to 127, `s` up to 32767, then `I`, `l`), but
 * py-amqp 5.1 (Debian's, under Celery 5.2) reads `s` as a *short string* and `b`/`l` as *unsigned*: a
 * worker clock of 128 in a pidbox reply broke every Python reader (`celery inspect`, Flower, mingle).
 * So every number we write carries an explicit type py-amqp decodes to the same Python value:
 *   integers in the signed 32-bit range → `I` (int32);
 *   larger positive integers            → `l` (int64; py-amqp reads it unsigned, which is right for them);
 *   fractions, ±Infinity, NaN and integers below −2^31 → `d` (double: py-amqp has no signed 64-bit read
 *   of amqplib's `l`, so such an integer arrives as a float of equal value).
 * Nested tables and arrays are typed the same way; strings, booleans, null and Buffers go as they are.
 */
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

type Typed = { "!": "int32" | "int64" | "double"; value: number | bigint };

function typedNumber(n: number): Typed {
  if (Number.isInteger(n) && n >= INT32_MIN && n <= INT32_MAX) return { "!": "int32", value: n };
  if (Number.isInteger(n) && n > INT32_MAX && n <= Number.MAX_SAFE_INTEGER) return { "!": "int64", value: n };
  return { "!": "double", value: n };
}

function typedValue(value: unknown): unknown {
  if (typeof value === "number") return typedNumber(value);
  if (typeof value === "bigint") return value > 0n && value < 2n ** 63n ? { "!": "int64", value } : typedNumber(Number(value));
  if (Array.isArray(value)) return value.map(typedValue);
  if (value === null || typeof value !== "object" || Buffer.isBuffer(value)) return value;
  if (Object.hasOwn(value, "!")) return value; // already typed by the caller
  return typedTable(value as Record<string, unknown>);
}

/** A copy of `table` with every number (at any depth) explicitly typed; `undefined` entries dropped. */
export function typedTable(table: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(table)) if (value !== undefined) out[key] = typedValue(value);
  return out;
}
