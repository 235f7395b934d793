/**
 * The reference ShopFDS service, a Fastify app on the runtime's adapter (@shopfds/runtime/http/fastify):
 *
 *   POST /orders          validate, FDS evaluation (blacklisted → 403), order on the primary, e-mail enqueued
 *   GET  /orders/:id      read through the router (a replica); a miss is re-read on the primary, so a
 *                         client sees its own order right after creating it
 *   POST /fds/evaluate    the FDS decision alone
 *   POST /login, /logout  sessions on the Redis Cluster (30 min after login); `Authorization: Bearer <token>`;
 *                         repeated wrong passwords are refused for a while (429, Retry-After)
 *   /v1/admin/blacklist   GET ?type=&limit=&after= (pages), POST (add), PATCH …/:type/:value {ttlSeconds},
 *                         DELETE …/:type/:value[?reason=], GET …/history ?type=&value=&limit=&after= — an admin session required
 *   /v1/admin/dead-letters GET ?task=&limit=, POST …/redrive {ids|task|all, reason}, DELETE ?confirm=<count> — admin
 *   POST /reports         (admin) records the report and enqueues its generation → 202 with its status URL
 *   GET  /reports/:id     status and, once completed, the download link; GET /reports/:id/download the CSV
 *   GET  /health, /health/live, /health/ready, /metrics (the adapter)
 *
 * Bodies are JSON up to 64 KB, checked by zod schemas through Fastify's type provider. Errors are JSON
 * `{ "error": { "code", "field"?, "message" } }` with a stable code; bad input is a 4xx, never a 500,
 * and writes nothing. One module per route group (routes/); this file is the plumbing.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import helmet from "helmet";
import Fastify, { type FastifyInstance } from "fastify";
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { HttpError } from "@shopfds/runtime/http";
import { shopfdsFastify } from "@shopfds/runtime/http/fastify";
import { accountRoutes } from "./routes/accounts";
import { blacklistRoutes } from "./routes/blacklist";
import { deadLetterRoutes } from "./routes/dead-letters";
import { orderRoutes } from "./routes/orders";
import { reportRoutes } from "./routes/reports";
import type { App, AppDeps } from "./deps";

export type { App, AppDeps } from "./deps";

export const MAX_BODY = 64 * 1024;
const MAX_DEPTH = 32;

/**
 * Where a string (or key) holding U+0000 is, as a field path: PostgreSQL's text and jsonb cannot store
 * it; undefined if nowhere. Bodies nested deeper than MAX_DEPTH are refused too (no schema here nests
 * that deep, and a deep one must not cost a stack overflow).
 */
function pathOfNul(root: unknown): string | undefined {
  const stack: [unknown, string, number][] = [[root, "", 0]];
  while (stack.length > 0) {
    const [value, at, depth] = stack.pop()!;
    if (typeof value === "string") {
      if (value.includes("\u0000")) return at;
      continue;
    }
    if (typeof value !== "object" || value === null) continue;
    if (depth >= MAX_DEPTH) throw new HttpError(400, "INVALID_INPUT", `${at || "body"}: nested more than ${MAX_DEPTH} levels deep`, at || "body");
    for (const [k, v] of Object.entries(value)) {
      if (k.includes("\u0000")) return at || "body";
      stack.push([v, at ? `${at}.${k}` : k, depth + 1]);
    }
  }
  return undefined;
}

/**
 * JSON bodies: parsed, then refused when they hold NUL characters or nest too deep (naming where). An
 * empty body is no body (a DELETE with a content type): the route's schema decides whether it needs one.
 */
function parseJson(text: string): unknown {
  if (text === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, "INVALID_JSON", "the body is not valid JSON");
  }
  const nul = pathOfNul(value);
  if (nul !== undefined) throw new HttpError(400, "INVALID_INPUT", `${nul || "body"}: must not contain NUL characters (\\u0000)`, nul || "body");
  return value;
}

/** The Fastify app with every route, ready to serve. */
export async function buildApp(deps: AppDeps, serverFactory?: (handler: (req: IncomingMessage, res: ServerResponse) => void) => import("node:http").Server): Promise<App> {
  const app = Fastify({
    bodyLimit: MAX_BODY,
    // A malformed URL (bad percent-encoding) is the caller's mistake: the project's error body, naming the value.
    frameworkErrors: (error, _request, reply) => {
      const field = error.code === "FST_ERR_BAD_URL" ? "value" : undefined;
      void (reply as unknown as import("fastify").FastifyReply).code(400).type("application/json").send({ error: { code: "INVALID_INPUT", ...(field ? { field } : {}), message: `${field ?? "url"}: is not a valid URL-encoded value` } });
    },
    ...(serverFactory ? { serverFactory } : {}),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, body, done) => {
    try {
      done(null, parseJson(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  // The blacklist's bulk import (routes/blacklist.ts): the body as text, read line by line there.
  app.addContentTypeParser(["application/x-ndjson", "text/csv"], { parseAs: "string" }, (_request, body, done) => done(null, body));
  await app.register(shopfdsFastify, { health: deps.health, metrics: deps.metrics, log: deps.log, db: deps.db });
  // The security headers on every answer (the edge adds none of its own: docs/stacks.md, "The edge"): an
  // API serves nothing to frame, script or embed; HSTS for a year on the host and its subdomains.
  // helmet's middleware, built once: @fastify/helmet 13.2 builds it again (options parsed, CSP string
  // joined) for every request, in two async hooks, 4 % of the service's time under GET load.
  const securityHeaders = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
    crossOriginResourcePolicy: { policy: "same-origin" },
    xFrameOptions: { action: "deny" },
  });
  app.addHook("onRequest", (request, reply, done) => securityHeaders(request.raw, reply.raw, (error) => done(error as Error | undefined)));
  await app.register(orderRoutes(deps));
  await app.register(accountRoutes(deps));
  await app.register(blacklistRoutes(deps));
  await app.register(reportRoutes(deps));
  await app.register(deadLetterRoutes(deps));
  await app.ready();
  return app as unknown as App;
}

/** The app as a node:http request handler, for a server of the caller's (tests, the benchmark, the service process). */
export async function createApp(deps: AppDeps): Promise<(req: IncomingMessage, res: ServerResponse) => void> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  await buildApp(deps, (h) => {
    handler = h;
    return createServer(h);
  });
  return handler!;
}
