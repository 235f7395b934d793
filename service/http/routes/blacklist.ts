/** /v1/admin/blacklist: list (pages), add, change a TTL, remove, and the history of every change — an admin session required. */
import { z } from "zod";
import type { BlacklistEntry } from "@shopfds/runtime/fds";
import { Readable } from "node:stream";
import { BLACKLIST_TYPES, BULK_FORMATS, ENTRY_KINDS } from "@shopfds/runtime/fds";
import { HttpError, validate } from "@shopfds/runtime/http";
import type { App, AppDeps } from "../deps";
import { account } from "../auth";

const type = z.enum(BLACKLIST_TYPES, { error: (i) => `must be one of ${BLACKLIST_TYPES.join(", ")} (got ${JSON.stringify(i.input ?? null)})` });
const kind = z.enum(ENTRY_KINDS, { error: (i) => `must be one of ${ENTRY_KINDS.join(", ")} (got ${JSON.stringify(i.input ?? null)})` });
const format = z.enum(BULK_FORMATS, { error: (i) => `must be one of ${BULK_FORMATS.join(", ")} (got ${JSON.stringify(i.input ?? null)})` });
/** An import's body: 50 000 lines of about 150 bytes. */
const IMPORT_BODY_LIMIT = 16 * 1024 * 1024;
const importQuery = z.object({ format: format.optional(), onInvalid: z.enum(["skip", "reject"], { error: (i) => `must be skip or reject (got ${JSON.stringify(i.input ?? null)})` }).optional() }).strict();
const exportQuery = z.object({ format: format.optional(), kind: kind.optional(), type: type.optional() }).strict();
const kindQuery = z.object({ kind: kind.optional() }).strict();
const listQuery = z
  .object({
    type,
    kind: kind.optional(),
    limit: z.string().regex(/^\d{1,4}$/, "must be a number from 1 to 1000").transform(Number).optional(),
    after: z.string().regex(/^\d{1,18}$/, "must be a cursor returned as next").transform(Number).optional(),
  })
  .strict();
const ttlBody = z.object({ ttlSeconds: z.unknown() }).strict();
const historyQuery = z
  .object({
    type: type.optional(),
    kind: kind.optional(),
    value: z.string().min(1).max(200).optional(),
    limit: z.string().regex(/^\d{1,4}$/, "must be a number from 1 to 1000").transform(Number).optional(),
    after: z.string().regex(/^\d{1,18}$/, "must be a cursor returned as next").transform(Number).optional(),
  })
  .strict();
const removeQuery = z.object({ reason: z.string().trim().min(1).max(500).optional(), kind: kind.optional() }).strict();

const entryView = (e: BlacklistEntry & { id?: number }) => ({ ...(e.id !== undefined ? { id: e.id } : {}), kind: e.kind, type: e.type, value: e.value, ...(e.keyVersion !== undefined ? { keyVersion: e.keyVersion } : {}), reason: e.reason, source: e.source, createdAt: e.createdAt, expiresAt: e.expiresAt });

export function blacklistRoutes(deps: AppDeps) {
  return async (app: App) => {
    app.get("/v1/admin/blacklist", { schema: { querystring: listQuery } }, async (request, reply) => {
      await account(request, deps.sessions, "admin");
      const q = request.query;
      const page = await deps.blacklist.list(q.type, { ...(q.kind ? { kind: q.kind } : {}), ...(q.limit !== undefined ? { limit: q.limit } : {}), ...(q.after !== undefined ? { after: q.after } : {}) });
      return reply.send({ entries: page.entries.map(entryView), ...(page.next !== undefined ? { next: page.next } : {}) });
    });

    app.post("/v1/admin/blacklist", async (request, reply) => {
      const admin = await account(request, deps.sessions, "admin");
      const body = request.body;
      if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, "INVALID_INPUT", "body: must be a JSON object", "body");
      const entry = await deps.blacklist.add({ ...(body as object), source: `admin:${admin.email}` } as never);
      request.traceLog.info({ user: { id: String(admin.userId) }, event: { action: "blacklist-add" }, blacklist: { type: entry.type, kind: entry.kind } }, "blacklist entry added");
      return reply.code(201).send(entryView(entry));
    });

    // Bulk import: NDJSON (application/x-ndjson) or CSV (text/csv), the format from ?format= or the
    // content type; bad lines reported by line and field, the rest applied at once (or, with
    // ?onInvalid=reject, nothing when a line is bad: 422).
    app.post("/v1/admin/blacklist/import", { bodyLimit: IMPORT_BODY_LIMIT, schema: { querystring: importQuery } }, async (request, reply) => {
      const admin = await account(request, deps.sessions, "admin");
      const contentType = String(request.headers["content-type"] ?? "").split(";")[0]!.trim();
      const f = request.query.format ?? (contentType === "text/csv" ? "csv" : contentType === "application/x-ndjson" ? "ndjson" : undefined);
      if (f === undefined || typeof request.body !== "string") throw new HttpError(415, "UNSUPPORTED_MEDIA_TYPE", `content-type: must be application/x-ndjson or text/csv (got ${JSON.stringify(contentType || null)})`, "content-type");
      const report = await deps.blacklist.importEntries(request.body, { format: f, actor: `admin:${admin.email}`, ...(request.query.onInvalid ? { onInvalid: request.query.onInvalid } : {}) });
      request.traceLog.info({ user: { id: String(admin.userId) }, event: { action: "blacklist-import" }, blacklist: { lines: report.lines, added: report.added, updated: report.updated, unchanged: report.unchanged, errors: report.errors.length, applied: report.applied } }, "blacklist import");
      if (!report.applied) return reply.code(422).send({ error: { code: "IMPORT_REJECTED", field: "body", message: `${report.errors.length} of ${report.lines} lines are invalid (see errors); nothing was applied` }, ...report });
      return reply.send(report);
    });

    app.get("/v1/admin/blacklist/export", { schema: { querystring: exportQuery } }, async (request, reply) => {
      await account(request, deps.sessions, "admin");
      const q = request.query;
      const f = q.format ?? "ndjson";
      const lines = deps.blacklist.exportEntries({ format: f, ...(q.kind ? { kind: q.kind } : {}), ...(q.type ? { type: q.type } : {}) });
      return reply
        .type(f === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson")
        .header("content-disposition", `attachment; filename="blacklist.${f === "csv" ? "csv" : "ndjson"}"`)
        .send(Readable.from(lines));
    });

    app.get("/v1/admin/blacklist/history", { schema: { querystring: historyQuery } }, async (request, reply) => {
      await account(request, deps.sessions, "admin");
      const q = request.query;
      const page = await deps.blacklist.history({ ...(q.type ? { type: q.type } : {}), ...(q.kind ? { kind: q.kind } : {}), ...(q.value !== undefined ? { value: q.value } : {}), ...(q.limit !== undefined ? { limit: q.limit } : {}), ...(q.after !== undefined ? { after: q.after } : {}) });
      return reply.send(page);
    });

    app.delete("/v1/admin/blacklist/:type/:value", { schema: { querystring: removeQuery } }, async (request, reply) => {
      const admin = await account(request, deps.sessions, "admin");
      const params = request.params as { type: string; value: string };
      const t = validate(type, params.type, "type");
      const k = request.query.kind ?? "block";
      if (!(await deps.blacklist.remove(t, params.value, { actor: `admin:${admin.email}`, kind: k, ...(request.query.reason ? { reason: request.query.reason } : {}) }))) throw new HttpError(404, "ENTRY_NOT_FOUND", `value: no ${k} ${t} entry for it`, "value");
      request.traceLog.info({ user: { id: String(admin.userId) }, event: { action: "blacklist-remove" }, blacklist: { type: t } }, "blacklist entry removed");
      return reply.code(204).send();
    });

    app.patch("/v1/admin/blacklist/:type/:value", { schema: { body: ttlBody, querystring: kindQuery } }, async (request, reply) => {
      const admin = await account(request, deps.sessions, "admin");
      const params = request.params as { type: string; value: string };
      const t = validate(type, params.type, "type");
      return reply.send(entryView(await deps.blacklist.changeTtl(t, params.value, request.body.ttlSeconds as number, { actor: `admin:${admin.email}`, ...(request.query.kind ? { kind: request.query.kind } : {}) })));
    });
  };
}
