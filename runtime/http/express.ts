/**
 * The runtime in an Express app (`@shopfds/runtime/http/express`; express ≥ 5 and, for the session
 * store, express-session are peer dependencies):
 *
 *   app.use(shopfdsExpress({ health, metrics, log, db }));   // first
 *   app.use(express.json({ limit: "64kb" }));
 *   app.get("/orders/:id", …);
 *   app.use(shopfdsErrors({ log }));                       // last
 *
 * The same behaviour as the Fastify adapter (http/fastify.ts): the health endpoints and /metrics, one
 * ECS access line per request with the trace id (labels from `res.locals.logLabels`), each request in the
 * router's read-your-writes scope, the runtime's errors as `{ error: { code, field?, message } }`
 * (express.json's body errors included); and `ExpressSessionStore`, an express-session store on the
 * Redis Cluster session store.
 */
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from "express";
import session from "express-session";
import type { Logger } from "pino";
import type { Database } from "../db/router";
import type { HealthMonitor } from "../health/health";
import type { ServiceMetrics } from "../observability/metrics";
import { accessLogger, traceContext, withTrace } from "../observability/logger";
import { nameServerSpan } from "../observability/trace-context";
import { trace } from "@opentelemetry/api";
import { captureError } from "../observability/sentry";
import type { SessionStore } from "../redis/sessions";
import { logAccess } from "./access";
import { errorResponse } from "./errors";
import { carriedWriteLocation, WRITE_LOCATION_HTTP_HEADER, writeLocationCookie } from "./write-location";

export interface ShopfdsExpressOptions {
  readonly health: HealthMonitor;
  readonly metrics: ServiceMetrics;
  readonly log: Logger;
  /** The router whose read-your-writes scope each request runs in; none: no scope. */
  readonly db?: Database;
}

/** The route a request matched, as Express knows it once a handler ran (`/orders/:id`). */
const routeOf = (req: Request) => (req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : "(no route)");

/** The probes, the access line and the read-your-writes scope: mount it before the routes. */
export function shopfdsExpress(o: ShopfdsExpressOptions): RequestHandler {
  const probes: Record<string, (req: Request, res: Response) => void> = {
    "/health": o.health.handler("health"),
    "/health/live": o.health.handler("live"),
    "/health/ready": o.health.handler("ready"),
    "/metrics": o.metrics.handler(),
  };
  const access = accessLogger(o.log);
  return (req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    const traced = traceContext(req.headers.traceparent as string | undefined);
    const log = withTrace(o.log, traced);
    const span = trace.getActiveSpan(); // the request's server span (tracing on), named after its route at the end
    res.locals.traceLog = log;
    res.locals.logLabels = {};
    res.once("finish", () => {
      const route = probes[req.path] && req.method === "GET" ? req.path : routeOf(req);
      nameServerSpan(req.method, route, span);
      logAccess(withTrace(access, traced), o.metrics, { method: req.method, path: req.path, route, status: res.statusCode, seconds: (performance.now() - started) / 1000, labels: res.locals.logLabels as Record<string, string> });
    });
    const probe = req.method === "GET" ? probes[req.path] : undefined;
    if (probe) return probe(req, res);
    if (!o.db) return next();
    // The rest of the chain runs inside the scope (it starts synchronously from here). The answer's end
    // carries the scope's write location: each write brought it back within the write's own round
    // trip (locateWrites), so the end waits for nothing more; a streamed answer whose headers went out
    // already does not carry it.
    void o.db.withSession(
      (session) =>
        new Promise<void>((resolve) => {
          res.once("close", resolve);
          const end = res.end.bind(res) as (...args: unknown[]) => Response;
          res.end = ((...args: unknown[]) => {
            if (res.headersSent || !session.hasLocation()) return end(...args);
            void session
              .writeLocation()
              .then(
                (location) => {
                  if (location && !res.headersSent) res.setHeader(WRITE_LOCATION_HTTP_HEADER, location).append("Set-Cookie", writeLocationCookie(location));
                },
                () => undefined,
              )
              .finally(() => end(...args));
            return res;
          }) as Response["end"];
          next();
        }),
      { after: carriedWriteLocation(req.headers), locateWrites: true },
    );
  };
}

/**
 * Mount it last: a request no route took is a 404 with the project's body, and the runtime's errors (and
 * express.json's body errors) are answered as the project's error body.
 */
export function shopfdsErrors(o: { readonly log: Logger }): [RequestHandler, ErrorRequestHandler] {
  const notFound: RequestHandler = (req, res) => void res.status(404).json({ error: { code: "NOT_FOUND", message: `no route ${req.method} ${req.path}` } });
  return [notFound, errorHandler(o)];
}

function errorHandler(o: { readonly log: Logger }): ErrorRequestHandler {
  return (error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const e = error as { type?: string; status?: number };
    const body =
      e.type === "entity.parse.failed"
        ? { status: 400, code: "INVALID_JSON", message: "the body is not valid JSON" }
        : e.type === "entity.too.large"
          ? { status: 413, code: "BODY_TOO_LARGE", message: "the body is too large" }
          : e.type === "charset.unsupported" || e.type === "encoding.unsupported"
            ? { status: 415, code: "UNSUPPORTED_MEDIA_TYPE", message: "send a JSON body (content-type: application/json; charset=utf-8)" }
            : undefined;
    const answer = body ? { status: body.status, headers: {}, body: { error: { code: body.code, message: body.message } }, unexpected: false } : errorResponse(error);
    if (answer.unexpected) {
      ((res.locals.traceLog as Logger | undefined) ?? o.log).error({ err: error, http: { request: { method: req.method } }, url: { path: req.path } }, "request failed");
      captureError(error, { tags: { route: routeOf(req) } });
    }
    res.status(answer.status).set(answer.headers).json(answer.body);
  };
}

/**
 * An express-session store backed by the Redis Cluster session store: each save stores the session for
 * the full TTL, and `touch` (express-session calls it on requests that leave the session unchanged)
 * extends it, so it expires `ttlMs` after the last request. Waits are bounded by the store's timeout: a
 * down cluster is an error (503 through `shopfdsErrors`), never a hung request.
 */
export class ExpressSessionStore extends session.Store {
  constructor(private readonly sessions: SessionStore<unknown>) {
    super();
  }

  override get(sid: string, callback: (err: unknown, session?: session.SessionData | null) => void): void {
    this.sessions.get(sid).then((data) => callback(null, (data as session.SessionData | undefined) ?? null), callback);
  }

  override set(sid: string, data: session.SessionData, callback?: (err?: unknown) => void): void {
    this.sessions.save(sid, JSON.parse(JSON.stringify(data))).then(() => callback?.(), (e) => callback?.(e));
  }

  override destroy(sid: string, callback?: (err?: unknown) => void): void {
    this.sessions.destroy(sid).then(() => callback?.(), (e) => callback?.(e));
  }

  override touch(sid: string, _data: session.SessionData, callback?: () => void): void {
    this.sessions.touch(sid).then(() => callback?.(), (e) => (callback as ((err?: unknown) => void) | undefined)?.(e));
  }
}
