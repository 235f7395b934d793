/**
 * The blacklist's bulk format: one entry per line, as NDJSON (one JSON object a line) or CSV (a header
 * line naming the columns, then one entry a line), the same fields either way:
 *
 *   kind        block (default) or allow
 *   type        ip, email or card
 *   value       the IP, e-mail or card number (a card's digits are hashed on import, never kept)
 *   hash        instead of value for a card: its keyed hash as exported, with keyVersion
 *   keyVersion  the card-hash key version that made `hash`
 *   reason      why (required)
 *   source      who listed it (default: the importer)
 *   ttlSeconds  time to live from now, or
 *   expiresAt   an ISO 8601 expiry (what an export writes, so re-importing an export changes nothing)
 *
 * Parsing only; runtime/fds/blacklist.ts (`importEntries`, `exportEntries`) validates and applies.
 * CSV is read and written with csv-parse and csv-stringify (quoting, embedded newlines and commas).
 */
import { parse as parseCsv } from "csv-parse/sync";
import { stringify as stringifyCsv } from "csv-stringify/sync";
import { InputError } from "../errors";

export const BULK_FORMATS = ["ndjson", "csv"] as const;
export type BulkFormat = (typeof BULK_FORMATS)[number];

/** The columns of a CSV export (and the fields an import line may hold). */
export const BULK_COLUMNS = ["kind", "type", "value", "hash", "keyVersion", "reason", "source", "ttlSeconds", "expiresAt"] as const;
const NUMERIC = new Set(["ttlSeconds", "keyVersion"]);

/** A line of an import, its fields as written, or why it could not be read. */
export type BulkLine = { readonly line: number; readonly fields: Record<string, unknown> } | { readonly line: number; readonly problem: string; readonly field: string };

/** The lines of an import (blank lines skipped); a CSV whose structure is broken is refused whole. */
export function parseBulk(text: string, format: BulkFormat): BulkLine[] {
  if (format === "ndjson") {
    const lines: BulkLine[] = [];
    text.split("\n").forEach((raw, i) => {
      const line = raw.trim();
      if (line === "") return;
      let fields: unknown;
      try {
        fields = JSON.parse(line);
      } catch {
        lines.push({ line: i + 1, field: "line", problem: "is not valid JSON" });
        return;
      }
      if (typeof fields !== "object" || fields === null || Array.isArray(fields)) lines.push({ line: i + 1, field: "line", problem: "must be a JSON object" });
      else lines.push({ line: i + 1, fields: fields as Record<string, unknown> });
    });
    return lines;
  }
  let records: { record: Record<string, string>; info: { lines: number } }[];
  try {
    records = parseCsv(text, { columns: (header: string[]) => header.map((h) => h.trim()), info: true, relax_column_count: true, skip_empty_lines: true, trim: true, bom: true });
  } catch (error) {
    const at = (error as { lines?: number }).lines;
    throw new InputError("body", `body: not readable as CSV${at ? ` at line ${at}` : ""} (${(error as Error).message})`);
  }
  return records.map(({ record, info }) => {
    const fields: Record<string, unknown> = {};
    for (const [name, cell] of Object.entries(record)) {
      if (cell === "" || cell === undefined) continue;
      fields[name] = NUMERIC.has(name) && /^-?\d+$/.test(cell) ? Number(cell) : cell;
    }
    return { line: info.lines, fields };
  });
}

/** One exported entry as a line of the format (CSV: without the header, see `bulkHeader`). */
export function formatBulkLine(entry: Readonly<Record<(typeof BULK_COLUMNS)[number], unknown>>, format: BulkFormat): string {
  if (format === "ndjson") return `${JSON.stringify(Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== undefined)))}\n`;
  return stringifyCsv([BULK_COLUMNS.map((c) => (entry[c] === undefined ? "" : String(entry[c])))]);
}

/** What an export starts with: the CSV header line, nothing for NDJSON. */
export const bulkHeader = (format: BulkFormat): string => (format === "csv" ? stringifyCsv([[...BULK_COLUMNS]]) : "");
