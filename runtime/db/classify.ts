/**
 * Decides whether a statement is provably read-only, so the router may send it to a replica. When in
 * doubt the answer is no (the primary): a plain SELECT / WITH … SELECT / SHOW / TABLE / VALUES, one
 * statement, no row locks, no data-modifying CTE, no SELECT INTO, and only function calls from a list
 * of functions known to have no side effects (plus any the caller vets).
 *
 * Hand-written because no maintained JavaScript SQL parser covers PostgreSQL's grammar fully, and a
 * conservative lexical check is what routing needs: a false "no" costs a primary read, never a wrong answer.
 */

/** Functions without side effects that reads commonly call (lower-case names). */
export const SAFE_FUNCTIONS: ReadonlySet<string> = new Set(
  (
    "count sum avg min max bool_and bool_or every array_agg string_agg json_agg jsonb_agg json_object_agg jsonb_object_agg " +
    "coalesce nullif greatest least lower upper length char_length octet_length substr substring trim btrim ltrim rtrim " +
    "replace concat concat_ws left right position strpos split_part format initcap lpad rpad md5 encode decode " +
    "abs ceil ceiling floor round trunc mod power sqrt exp ln log sign width_bucket " +
    "now current_date current_time current_timestamp localtime localtimestamp statement_timestamp transaction_timestamp clock_timestamp " +
    "date_trunc date_part extract age make_date make_interval make_timestamp make_timestamptz to_char to_date to_timestamp to_number " +
    "json_build_object jsonb_build_object json_build_array jsonb_build_array to_json to_jsonb row_to_json jsonb_set jsonb_extract_path json_extract_path " +
    "jsonb_array_elements json_array_elements jsonb_array_length jsonb_each jsonb_object_keys jsonb_typeof jsonb_strip_nulls " +
    "array_length array_position array_remove array_append array_cat cardinality unnest generate_series generate_subscripts " +
    "row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value percentile_cont percentile_disc mode " +
    "cast host inet masklen network family " +
    "pg_is_in_recovery pg_last_wal_replay_lsn pg_last_wal_receive_lsn pg_last_xact_replay_timestamp pg_wal_lsn_diff version current_setting current_database current_schema current_user session_user " +
    "exists"
  ).split(/\s+/),
);

/** Words that may be followed by `(` without being a function call. */
const KEYWORDS_BEFORE_PAREN = new Set(
  "select with as in any all some exists from join on using where and or not over filter values partition by within group having lateral interval array row distinct case when then else end is between like ilike similar to limit offset order union intersect except recursive materialized numeric decimal varchar char character bit timestamp time timestamptz".split(
    " ",
  ),
);

const LOCKING = /\bfor\s+(update|no\s+key\s+update|share|key\s+share)\b/;
const MODIFYING = /\b(insert|update|delete|merge|truncate|copy|create|drop|alter|grant|revoke|lock|call|do|vacuum|analyze|cluster|refresh|reindex|notify|listen|set|reset|discard|prepare|execute)\b/;

/**
 * Replaces string literals, quoted identifiers and comments with blanks, lower-cases the rest.
 * Returns undefined when the text cannot be lexed with confidence (unterminated quote, comment).
 */
export function stripLiterals(sql: string): string | undefined {
  let out = "";
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    const next = sql[i + 1];
    if (c === "-" && next === "-") {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? sql.length : end;
      out += " ";
    } else if (c === "/" && next === "*") {
      const end = sql.indexOf("*/", i + 2);
      if (end < 0) return undefined;
      i = end + 2;
      out += " ";
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      for (;;) {
        const k = sql.indexOf(c, j);
        if (k < 0) return undefined;
        if (sql[k + 1] === c) {
          j = k + 2;
          continue;
        }
        // E'…' strings may escape the quote with a backslash.
        if (c === "'" && /[eE]$/.test(sql.slice(0, i)) && sql[k - 1] === "\\") {
          j = k + 1;
          continue;
        }
        i = k + 1;
        break;
      }
      out += c === "'" ? " '' " : ' "" ';
    } else if (c === "$") {
      const tag = /^\$[A-Za-z_]*\$/.exec(sql.slice(i));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        if (end < 0) return undefined;
        i = end + tag[0].length;
        out += " '' ";
      } else {
        out += c;
        i++;
      }
    } else {
      out += c.toLowerCase();
      i++;
    }
  }
  return out;
}

export interface ClassifyOptions {
  /** Further functions (lower-case names) the caller has vetted as free of side effects. */
  readonly readOnlyFunctions?: ReadonlySet<string>;
}

/** True only when `sql` is provably a read: safe to run on a hot standby and to retry elsewhere. */
export function isReadOnlyStatement(sql: string, options: ClassifyOptions = {}): boolean {
  const text = stripLiterals(sql);
  if (text === undefined) return false;
  const body = text.trim().replace(/;\s*$/, "");
  if (body.includes(";")) return false; // several statements
  const first = /^\(*\s*([a-z_]+)/.exec(body)?.[1];
  if (!first || !["select", "with", "show", "table", "values"].includes(first)) return false;
  if (first === "show") return /^show\s+[a-z_.]+$/.test(body);
  if (LOCKING.test(body) || MODIFYING.test(body)) return false;
  if (/\binto\b/.test(body)) return false; // SELECT … INTO creates a table
  for (const m of body.matchAll(/([a-z_][a-z0-9_$]*)(?:\s*\.\s*([a-z_][a-z0-9_$]*))?\s*\(/g)) {
    const name = m[2] ?? m[1];
    if (m[2] === undefined && KEYWORDS_BEFORE_PAREN.has(name)) continue;
    if (m[2] !== undefined && m[1] !== "pg_catalog") return false; // schema-qualified user function: cannot vet
    if (!SAFE_FUNCTIONS.has(name) && !options.readOnlyFunctions?.has(name)) return false;
  }
  return true;
}
