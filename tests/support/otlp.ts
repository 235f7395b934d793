/**
 * Test support: the spans an OTLP/HTTP JSON exporter sent, flattened, as a collector would receive
 * them (the body is OTLP's JSON encoding: hex trace and span ids, attributes as typed key/values).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

export interface ReceivedSpan {
  readonly service: string;
  readonly name: string;
  /** OTLP's SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly status?: { code?: number; message?: string };
}

type KeyValue = { key: string; value: Record<string, unknown> };
const value = (v: Record<string, unknown>): unknown => v.stringValue ?? v.boolValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.arrayValue;
const attributes = (kvs: KeyValue[] | undefined) => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, value(kv.value)]));

/** The spans in one OTLP JSON export request. */
export function spansOf(body: string): ReceivedSpan[] {
  const request = JSON.parse(body) as { resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[] };
  return (request.resourceSpans ?? []).flatMap((rs) => {
    const service = String(attributes(rs.resource?.attributes)["service.name"] ?? "");
    return (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((s) => ({
        service,
        name: String(s.name),
        kind: Number(s.kind),
        traceId: String(s.traceId),
        spanId: String(s.spanId),
        ...(s.parentSpanId ? { parentSpanId: String(s.parentSpanId) } : {}),
        attributes: attributes(s.attributes as KeyValue[]),
        ...(s.status ? { status: s.status as ReceivedSpan["status"] } : {}),
      })),
    );
  });
}

/** Every span the webhook sink kept in `dir` (service/bin/webhook-sink.ts: one JSON file per export). */
export function receivedSpans(dir: string): ReceivedSpan[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json") && !f.startsWith("."))
    .flatMap((f) => {
      const record = JSON.parse(readFileSync(path.join(dir, f), "utf8")) as { path: string; body: string };
      return record.path === "/v1/traces" ? spansOf(record.body) : [];
    });
}
