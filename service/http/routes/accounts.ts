/** POST /login, POST /logout, and the session lookup the admin routes use. */
import { z } from "zod";
import { HttpError } from "@shopfds/runtime/http";
import { authenticate, type Account } from "../../shop/accounts";
import type { App, AppDeps } from "../deps";
import { account } from "../auth";

const loginBody = z.object({ email: z.string({ error: "must be an e-mail address" }).max(254), password: z.string({ error: "must be a string" }).min(1, "must not be empty").max(1024) }).strict();

export function accountRoutes(deps: AppDeps) {
  return async (app: App) => {
    app.post("/login", { schema: { body: loginBody } }, async (request, reply) => {
      const body = request.body;
      // The peer's address: behind a proxy, that proxy's (forwarding headers can be forged by anyone).
      const ip = request.socket.remoteAddress ?? "unknown";
      const wait = await deps.loginGuard.retryAfterSeconds(body.email, ip);
      if (wait !== undefined) throw new HttpError(429, "TOO_MANY_ATTEMPTS", `too many wrong passwords: try again in ${wait} s`, undefined, { "retry-after": String(wait) });
      const found = await authenticate(deps.db, body.email, body.password);
      if (!found) {
        await deps.loginGuard.failed(body.email, ip);
        throw new HttpError(401, "INVALID_CREDENTIALS", "the e-mail or the password is wrong");
      }
      await deps.loginGuard.succeeded(body.email, ip);
      const session = await deps.sessions.create(found);
      request.traceLog.info({ user: { id: String(found.userId) }, event: { action: "login" } }, "login");
      return reply.send({ token: session.id, expiresAt: session.expiresAt, user: { id: found.userId, email: found.email, role: found.role } });
    });

    app.post("/logout", async (request, reply) => {
      const { sessionId } = await account(request, deps.sessions);
      await deps.sessions.destroy(sessionId);
      return reply.code(204).send();
    });
  };
}
