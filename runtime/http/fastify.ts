/**
 * The runtime in a Fastify app (`@shopfds/runtime/http/fastify`; fastify ≥ 5 is a peer dependency):
 *
 *   const app = Fastify();
 *   await app.register(shopfdsFastify, { health, metrics, log, db });   // first: it sees every route after it
 *   app.get("/orders/:id", …);
 *
 * - `/health`, `/health/live`, `/health/ready` (application/health+json; 503 when failing) and `/metrics`;
 * - one ECS access line per request (method, status, route, duration, `labels` a handler adds to
 *   `request.logLabels`), with the caller's W3C trace id; probes and scrapes at debug level only;
 * - each request handled inside the router's read-your-writes scope (`db.withSession`): a read after a
 *   write in the same request sees it, even before the replicas do; and across requests: the answer
 *   carries the scope's write location (header `shopfds-write-location` and a one-minute cookie), and a
 *   request that brings it back reads only from replicas that have replayed it (./write-location.ts);
 * - errors answered as `{ error: { code, field?, message } }`: schema validation and body problems 400
 *   (413, 415) naming the field, the runtime's input errors 422, a dependency down 503 with Retry-After,
 *   the rest 500 (logged at error level with the trace id);
 * - `fastifySessionStore(sessions)`: a `@fastify/session` store on the Redis Cluster session store
 *   (30 minutes, refreshed on each save, bounded waits).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from "fastify";
import type { Bindings, Logger } from "pino";
import type { Database } from "../db/router";
import type { HealthMonitor } from "../health/health";
import type { ServiceMetrics } from "../observability/metrics";
import { accessLogger, traceContext, withTrace } from "../observability/logger";
import { nameServerSpan } from "../observability/trace-context";
import { captureError } from "../observability/sentry";
import type { SessionStore } from "../redis/sessions";
import { logAccess } from "./access";
import { errorResponse, fieldPath } from "./errors";
import { carriedWriteLocation, WRITE_LOCATION_HTTP_HEADER, writeLocationCookie } from "./write-location";
import type { SessionHandle } from "../db/router";

/** Each request's read-your-writes scope, for the onSend hook (a WeakMap: nothing added to the request's type). */
const sessionOf = new WeakMap<FastifyRequest, SessionHandle>();
/** A traced request's trace fields, for its access line (most requests have none: nothing stored). */
const traceOf = new WeakMap<FastifyRequest, Bindings>();

export interface ShopfdsFastifyOptions {
  readonly health: HealthMonitor;
  readonly metrics: ServiceMetrics;
  readonly log: Logger;
  /** The router whose read-your-writes scope each request runs in; none: no scope. */
  readonly db?: Database;
}

declare module "fastify" {
  interface FastifyRequest {
    /** ECS `labels` of this request's access line (e.g. `fds_decision`). */
    logLabels: Record<string, string>;
    /** A logger carrying the request's trace context. */
    traceLog: Logger;
  }
}

/** A Fastify error as the project's body: its status and code, and the field when validation names one. */
function frameworkError(error: FastifyError): { status: number; code: string; field?: string; message: string } | undefined {
  if (error.validation && error.validation.length > 0) {
    const first = error.validation[0] as { instancePath?: string; message?: string; params?: { issue?: { path?: PropertyKey[] } } };
    const path = first.params?.issue?.path ?? (first.instancePath ?? "").split("/").filter(Boolean);
    const field = fieldPath(path, error.validationContext === "querystring" ? "query" : error.validationContext === "params" ? "params" : "body");
    return { status: 400, code: "INVALID_INPUT", field, message: `${field}: ${first.message ?? "is not valid"}` };
  }
  const status = error.statusCode ?? 500;
  if (status === 415) return { status, code: "UNSUPPORTED_MEDIA_TYPE", message: "send a JSON body (content-type: application/json)" };
  if (status === 413) return { status, code: "BODY_TOO_LARGE", message: error.message };
  if (status === 400 && /JSON/i.test(`${error.code} ${error.message}`)) return { status, code: "INVALID_JSON", message: "the body is not valid JSON" };
  if (status >= 400 && status < 500) return { status, code: "INVALID_INPUT", message: error.message };
  return undefined;
}

/** The plugin (applies to the app it is registered on, not an encapsulated child). */
export async function shopfdsFastify(app: FastifyInstance, o: ShopfdsFastifyOptions): Promise<void> {
  const probes = { health: o.health.handler("health"), live: o.health.handler("live"), ready: o.health.handler("ready"), metrics: o.metrics.handler() };
  app.decorateRequest("logLabels", null as never);
  app.decorateRequest("traceLog", null as never);
  const access = accessLogger(o.log);

  // Callback-style hooks, not async ones: Fastify then runs them without a promise and a microtask each.
  app.addHook("onRequest", (request, _reply, done) => {
    request.logLabels = {};
    nameServerSpan(request.method, request.routeOptions.url);
    const trace = traceContext(request.headers.traceparent as string | undefined);
    request.traceLog = withTrace(o.log, trace);
    if (trace) traceOf.set(request, trace);
    done();
  });

  // Every handler declared after the plugin runs inside the router's read-your-writes scope.
  if (o.db) {
    const db = o.db;
    app.addHook("onRoute", (route) => {
      const handler = route.handler as RouteHandlerMethod;
      route.handler = function scoped(this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
        return db.withSession(
          async (session) => {
            sessionOf.set(request, session);
            return handler.call(this, request, reply);
          },
          // The answer carries the scope's location: each write brings it back within the write's own round trip.
          { after: carriedWriteLocation(request.headers), locateWrites: true },
        );
      } as RouteHandlerMethod;
    });
    // Before the answer leaves: where the scope's writes stand, for the client's next request.
    app.addHook("onSend", (request, reply, payload, done) => {
      const session = sessionOf.get(request);
      // A scope that wrote nothing and was given nothing (most reads) has no location: nothing to ask.
      if (!session?.hasLocation()) return done(null, payload);
      void session.writeLocation().then(
        (location) => {
          if (location) void reply.header(WRITE_LOCATION_HTTP_HEADER, location).header("set-cookie", writeLocationCookie(location));
          done(null, payload);
        },
        () => done(null, payload),
      );
    });
  }

  app.addHook("onResponse", (request, reply, done) => {
    const route = request.routeOptions.url ?? "(no route)";
    logAccess(withTrace(access, traceOf.get(request)), o.metrics, { method: request.method, path: request.url.split("?")[0]!, route, status: reply.statusCode, seconds: reply.elapsedTime / 1000, labels: request.logLabels ?? {} });
    done();
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const known = frameworkError(error);
    const answer = known ? { status: known.status, headers: {}, body: { error: { code: known.code, ...(known.field ? { field: known.field } : {}), message: known.message } }, unexpected: false } : errorResponse(error);
    if (answer.unexpected) {
      (request.traceLog ?? o.log).error({ err: error, http: { request: { method: request.method } }, url: { path: request.url.split("?")[0] } }, "request failed");
      captureError(error, { tags: { route: request.routeOptions.url ?? "" } });
    }
    void reply.code(answer.status).headers(answer.headers).type("application/json").send(answer.body);
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).type("application/json").send({ error: { code: "NOT_FOUND", message: `no route ${request.method} ${request.url.split("?")[0]}` } });
  });

  // The node handlers the runtime already has, on the raw request and response.
  const raw = (handler: (req: FastifyRequest["raw"], res: FastifyReply["raw"]) => void) => (request: FastifyRequest, reply: FastifyReply) => {
    reply.hijack();
    handler(request.raw, reply.raw);
  };
  app.get("/health", raw(probes.health));
  app.get("/health/live", raw(probes.live));
  app.get("/health/ready", raw(probes.ready));
  app.get("/metrics", raw(probes.metrics));
}
// What fastify-plugin does: the hooks, handlers and routes apply to the app it is registered on.
(shopfdsFastify as unknown as Record<symbol, unknown>)[Symbol.for("skip-override")] = true;

/** The callback store `@fastify/session` takes, on the Redis Cluster session store. */
export interface FastifySessionStoreLike {
  set(sessionId: string, session: unknown, callback: (err?: unknown) => void): void;
  get(sessionId: string, callback: (err: unknown, result?: unknown) => void): void;
  destroy(sessionId: string, callback: (err?: unknown) => void): void;
}

/**
 * A `@fastify/session` store backed by `sessions`: each save (every request, with `rolling`, the
 * default) stores the session for the full TTL, so it expires `ttlMs` after the last request.
 */
export function fastifySessionStore(sessions: SessionStore<unknown>): FastifySessionStoreLike {
  return {
    set: (id, session, callback) => void sessions.save(id, JSON.parse(JSON.stringify(session))).then(() => callback(), callback),
    get: (id, callback) => void sessions.get(id).then((data) => callback(null, data ?? null), callback),
    destroy: (id, callback) => void sessions.destroy(id).then(() => callback(), callback),
  };
}
