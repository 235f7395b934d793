/** /v1/admin/blacklist: list (pages), add, change a TTL, remove, and the history of every change — an admin session required. */
import { z } from "zod";
import type { BlacklistEntry } from "@shopfds/runtime/fds";
import { BLACKLIST_TYPES } from "@shopfds/runtime/fds";
import { HttpError, validate } from "@shopfds/runtime/http";
import type { App, AppDeps } from "../deps";
import { account } from "../auth";

const type = z.enum(BLACKLIST_TYPES, { error: (i) => `must be one of ${BLACKLIST_TYPES.join(", ")} (got ${JSON.stringify(i.input ?? null)})` });
const listQuery = z
  .object({
    type,
    limit: z.string().regex(/^\d{1,4}$/, "must be a number from 1 to 1000").transform(Number).optional(),
    after: z.string().regex(/^\d{1,18}$/, "must be a cursor returned as next").transform(Number).optional(),
  })
  .strict();
const ttlBody = z.object({ ttlSeconds: z.unknown() }).strict();
const historyQuery = z
  .object({
    type: type.optional(),
    value: z.string().min(1).max(200).optional(),
    limit: z.string().regex(/^\d{1,4}$/, "must be a number from 1 to 1000").transform(Number).optional(),
    after: z.string().regex(/^\d{1,18}$/, "must be a cursor returned as next").transform(Number).optional(),
  })
  .strict();
const removeQuery = z.object({ reason: z.string().trim().min(1).max(500).optional() }).strict();

const entryView = (e: BlacklistEntry & { id?: number }) => ({ ...(e.id !== undefined ? { id: e.id } : {}), type: e.type, value: e.value, ...(e.keyVersion !== undefined ? { keyVersion: e.keyVersion } : {}), reason: e.reason, source: e.source, createdAt: e.createdAt, expiresAt: e.expiresAt });

export function blacklistRoutes(deps: AppDeps) {
  return async (app: App) => {
    app.get("/v1/admin/blacklist", { schema: { querystring: listQuery } }, async (request, reply) => {
      await account(request, deps.sessions, "admin");
      const q = request.query;
      const page = await deps.blacklist.list(q.type, { ...(q.limit !== undefined ? { limit: q.limit } : {}), ...(q.after !== undefined ? { after: q.after } : {}) });
      return reply.send({ entries: page.entries.map(entryView), ...(page.next !== undefined ? { next: page.next } : {}) });
    });

    app.post("/v1/admin/blacklist", async (request, reply) => {
      const admin = await account(request, deps.sessions, "admin");
      const body = request.body;
      if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, "INVALID_INPUT", "body: must be a JSON object", "body");
      const entry = await deps.blacklist.add({ ...(body as object), source: `admin:${admin.email}` } as never);
      request.traceLog.info({ user: { id: String(admin.userId) }, event: { action: "blacklist-add" }, blacklist: { type: entry.type } }, "blacklist entry added");
      return reply.code(201).send(entryView(entry));
    });

    app.get("/v1/admin/blacklist/history", { schema: { querystring: historyQuery } }, async (request, reply) => {
      await account(request, deps.sessions, "admin");
      const q = request.query;
      const page = await deps.blacklist.history({ ...(q.type ? { type: q.type } : {}), ...(q.value !== undefined ? { value: q.value } : {}), ...(q.limit !== undefined ? { limit: q.limit } : {}), ...(q.after !== undefined ? { after: q.after } : {}) });
      return reply.send(page);
    });

    app.delete("/v1/admin/blacklist/:type/:value", { schema: { querystring: removeQuery } }, async (request, reply) => {
      const admin = await account(request, deps.sessions, "admin");
      const params = request.params as { type: string; value: string };
      const t = validate(type, params.type, "type");
      if (!(await deps.blacklist.remove(t, params.value, { actor: `admin:${admin.email}`, ...(request.query.reason ? { reason: request.query.reason } : {}) }))) throw new HttpError(404, "ENTRY_NOT_FOUND", `value: no ${t} entry for it`, "value");
      request.traceLog.info({ user: { id: String(admin.userId) }, event: { action: "blacklist-remove" }, blacklist: { type: t } }, "blacklist entry removed");
      return reply.code(204).send();
    });

    app.patch("/v1/admin/blacklist/:type/:value", { schema: { body: ttlBody } }, async (request, reply) => {
      const admin = await account(request, deps.sessions, "admin");
      const params = request.params as { type: string; value: string };
      const t = validate(type, params.type, "type");
      return reply.send(entryView(await deps.blacklist.changeTtl(t, params.value, request.body.ttlSeconds as number, { actor: `admin:${admin.email}` })));
    });
  };
}
