/** Who is asking: the session behind a request's bearer token, and the role a route needs. */
import type { FastifyRequest } from "fastify";
import { HttpError } from "@shopfds/runtime/http";
import type { SessionStore } from "@shopfds/runtime/redis";
import type { Account } from "../shop/accounts";

/** The session's account; 401 without a live session, 403 when `role` is required and not held. */
export async function account(request: FastifyRequest, sessions: SessionStore<Account>, role?: Account["role"]): Promise<Account & { sessionId: string }> {
  const m = /^Bearer ([A-Za-z0-9_-]{1,128})$/.exec(request.headers.authorization ?? "");
  const session = m ? await sessions.get(m[1]!) : undefined;
  if (!session) throw new HttpError(401, "UNAUTHENTICATED", "log in first (POST /login) and send the token as Authorization: Bearer <token>; sessions end 30 minutes after login", "authorization");
  if (role && session.role !== role) throw new HttpError(403, "FORBIDDEN", `this needs the ${role} role`);
  return { ...session, sessionId: m![1]! };
}
