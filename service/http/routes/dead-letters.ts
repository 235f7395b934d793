/**
 * /v1/admin/dead-letters — an admin session required (runtime/jobs/dead-letters.ts does the work):
 *   GET    ?task=&limit=                        the dead letters, oldest first, arguments redacted, and the count
 *   POST   /redrive {ids | task | all, reason, limit?}  send them back to their queues; the admin and reason recorded
 *   DELETE ?confirm=<count>                     purge, only when `confirm` is the count the admin saw (409 otherwise)
 */
import { z } from "zod";
import type { DeadLetters } from "@shopfds/runtime/jobs";
import { HttpError } from "@shopfds/runtime/http";
import type { App, AppDeps } from "../deps";
import { account } from "../auth";

const limit = z.string().regex(/^\d{1,5}$/, "must be a number from 1 to 10000").transform(Number).optional();
const listQuery = z.object({ task: z.string().min(1).max(200).optional(), limit }).strict();
const redriveBody = z
  .object({
    ids: z.array(z.string().min(1).max(200)).min(1, "must name at least one task id").max(10_000).optional(),
    task: z.string().min(1).max(200).optional(),
    all: z.literal(true, { error: "must be true when given" }).optional(),
    reason: z.string().trim().min(1, "must say why the tasks are sent back").max(400),
    limit: z.number().int("must be a whole number").min(1).max(10_000).optional(),
  })
  .strict()
  .refine((b) => [b.ids, b.task, b.all].filter((x) => x !== undefined).length === 1, { path: ["ids"], message: "name exactly one of ids, task or all" });
const purgeQuery = z.object({ confirm: z.string().regex(/^\d{1,7}$/, "must be the count of dead letters you mean to delete").transform(Number) }).strict();

export function deadLetterRoutes(deps: AppDeps) {
  const open = deps.deadLetters;
  return async (app: App) => {
    if (!open) return;
    const withQueue = async <T>(use: (dead: DeadLetters) => Promise<T>): Promise<T> => {
      const dead = await open();
      try {
        return await use(dead);
      } finally {
        await dead.close();
      }
    };

    app.get("/v1/admin/dead-letters", { schema: { querystring: listQuery } }, async (request, reply) => {
      await account(request, deps.sessions, "admin");
      const q = request.query;
      return reply.send(await withQueue(async (dead) => ({ count: await dead.count(), deadLetters: await dead.list({ ...(q.task ? { task: q.task } : {}), ...(q.limit !== undefined ? { limit: q.limit } : {}) }) })));
    });

    app.post("/v1/admin/dead-letters/redrive", { schema: { body: redriveBody } }, async (request, reply) => {
      const admin = await account(request, deps.sessions, "admin");
      const b = request.body;
      const select = b.ids ? { ids: b.ids } : b.task ? { task: b.task } : { all: true as const };
      const { redriven } = await withQueue((dead) => dead.redrive(select, { reason: b.reason, actor: `admin:${admin.email}`, ...(b.limit !== undefined ? { limit: b.limit } : {}) }));
      request.traceLog.info({ user: { id: String(admin.userId) }, event: { action: "dead-letters-redrive" }, labels: { reason: b.reason, count: String(redriven.length) } }, "dead letters redriven");
      return reply.send({ redriven: redriven.map((d) => ({ id: d.id, task: d.task, queue: d.queue })) });
    });

    app.delete("/v1/admin/dead-letters", { schema: { querystring: purgeQuery } }, async (request, reply) => {
      const admin = await account(request, deps.sessions, "admin");
      const purged = await withQueue(async (dead) => {
        const count = await dead.count();
        if (count !== request.query.confirm) throw new HttpError(409, "CONFIRMATION_MISMATCH", `confirm: must be the current count of dead letters, ${count} (got ${request.query.confirm})`, "confirm");
        return dead.purge();
      });
      request.traceLog.info({ user: { id: String(admin.userId) }, event: { action: "dead-letters-purge" }, labels: { count: String(purged) } }, "dead letters purged");
      return reply.send({ purged });
    });
  };
}
