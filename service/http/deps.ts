/**
 * What the HTTP layer is given (AppDeps) and the app type the route modules see: its own module, so
 * app.ts and the routes it registers both import it and neither imports the other's importer.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { Logger } from "pino";
import type { Database } from "@shopfds/runtime/db";
import type { Blacklist, FraudDetector } from "@shopfds/runtime/fds";
import type { DeadLetters } from "@shopfds/runtime/jobs";
import type { HealthMonitor } from "@shopfds/runtime/health";
import type { ServiceMetrics } from "@shopfds/runtime/observability";
import type { SessionStore } from "@shopfds/runtime/redis";
import type { Account } from "../shop/accounts";
import type { LoginGuard } from "../shop/login-guard";
import type { OrderTaskSender } from "../shop/orders";

export interface AppDeps {
  readonly db: Database;
  readonly fds: FraudDetector;
  readonly jobs: OrderTaskSender;
  readonly blacklist: Blacklist;
  readonly sessions: SessionStore<Account>;
  /** Brute-force protection of POST /login. */
  readonly loginGuard: LoginGuard;
  readonly health: HealthMonitor;
  readonly metrics: ServiceMetrics;
  readonly log: Logger;
  /** Where clients reach this service (links in answers: report status and download). @default "" (relative links) */
  readonly publicUrl?: string;
  /** Opens the dead-letter queue for the admin routes (closed after each request); absent: no such routes. */
  readonly deadLetters?: () => Promise<DeadLetters>;
}

/** The app as the route modules see it: zod schemas type the requests. */
export type App = FastifyInstance<Server, IncomingMessage, ServerResponse, FastifyBaseLogger, ZodTypeProvider>;
