/**
 * Health checks for services (FR-025, SC-010), in the `application/health+json` format
 * (draft-inadarei-api-health-check): status pass/warn/fail and one entry per check with its observed
 * value and time.
 *
 * Checks run in the background, each with a timeout, and requests are answered from the latest
 * results, so `/health` takes microseconds and never waits on a hung dependency. A check that is still
 * hung is not started again (no pile-up); once its last result is older than `staleAfterMs` it counts
 * as failed. Liveness is the process only; readiness is the dependencies.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export type HealthStatus = "pass" | "warn" | "fail";

export interface CheckOutcome {
  /** @default "pass" */
  readonly status?: HealthStatus;
  readonly observedValue?: number | string | boolean;
  readonly observedUnit?: string;
  readonly output?: string;
}

export interface HealthCheck {
  /** `component:measurement`, e.g. `postgres:primary`, `postgres:replica-1:lag`. */
  readonly name: string;
  readonly componentType?: "datastore" | "component" | "system";
  /** A failure of a non-critical check (a replica) makes the service `warn`, not `fail`. @default true */
  readonly critical?: boolean;
  readonly timeoutMs?: number;
  run(): Promise<CheckOutcome>;
}

export interface CheckResult {
  readonly status: HealthStatus;
  readonly componentType?: string;
  readonly observedValue?: number | string | boolean;
  readonly observedUnit?: string;
  readonly output?: string;
  /** When the result was measured (ISO-8601). */
  readonly time: string;
}

export interface HealthReport {
  readonly status: HealthStatus;
  readonly serviceId?: string;
  readonly description?: string;
  readonly checks: Record<string, CheckResult[]>;
}

export interface HealthMonitorOptions {
  readonly serviceId?: string;
  /** @default 2000 */
  readonly intervalMs?: number;
  /** Per check, unless the check sets its own. @default 1000 */
  readonly timeoutMs?: number;
  /** A result older than this counts as failed (its check is hung). @default 3 × intervalMs + timeoutMs */
  readonly staleAfterMs?: number;
}

interface State {
  readonly check: HealthCheck;
  result?: CheckResult;
  measuredAt: number;
  running: boolean;
}

const worst = (a: HealthStatus, b: HealthStatus): HealthStatus => (a === "fail" || b === "fail" ? "fail" : a === "warn" || b === "warn" ? "warn" : "pass");

export class HealthMonitor {
  private readonly states: State[];
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly staleAfterMs: number;
  private timer?: NodeJS.Timeout;
  private readonly startedAt = Date.now();

  constructor(
    checks: readonly HealthCheck[],
    private readonly options: HealthMonitorOptions = {},
  ) {
    const names = new Set<string>();
    for (const c of checks) {
      if (names.has(c.name)) throw new Error(`health check ${c.name}: the name is used twice`);
      names.add(c.name);
    }
    this.states = checks.map((check) => ({ check, measuredAt: 0, running: false }));
    this.intervalMs = options.intervalMs ?? 2000;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.staleAfterMs = options.staleAfterMs ?? 3 * this.intervalMs + this.timeoutMs;
  }

  /** Runs every check once (waiting for the results), then keeps refreshing in the background. */
  async start(): Promise<this> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Starts every check that is not still running and waits for them (each bounded by its timeout). */
  async refresh(): Promise<void> {
    await Promise.all(this.states.filter((s) => !s.running).map((s) => this.runOne(s)));
  }

  private async runOne(s: State): Promise<void> {
    s.running = true;
    const timeoutMs = s.check.timeoutMs ?? this.timeoutMs;
    const attempt = s.check.run().finally(() => {
      s.running = false;
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<CheckOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ status: "fail", output: `no answer within ${timeoutMs} ms` }), timeoutMs);
    });
    let outcome: CheckOutcome;
    try {
      outcome = await Promise.race([attempt, timeout]);
    } catch (error) {
      outcome = { status: "fail", output: (error as Error).message || String(error) };
    } finally {
      clearTimeout(timer);
    }
    attempt.catch(() => undefined);
    s.measuredAt = Date.now();
    s.result = {
      status: outcome.status ?? "pass",
      ...(s.check.componentType ? { componentType: s.check.componentType } : {}),
      ...(outcome.observedValue !== undefined ? { observedValue: outcome.observedValue } : {}),
      ...(outcome.observedUnit ? { observedUnit: outcome.observedUnit } : {}),
      ...(outcome.output ? { output: outcome.output } : {}),
      time: new Date(s.measuredAt).toISOString(),
    };
  }

  /** The latest results; never waits. */
  report(): HealthReport {
    const now = Date.now();
    let status: HealthStatus = "pass";
    const checks: Record<string, CheckResult[]> = {};
    for (const s of this.states) {
      let result: CheckResult = s.result ?? { status: "fail", output: "not measured yet", time: new Date(now).toISOString() };
      if (s.result && now - s.measuredAt > this.staleAfterMs) {
        result = { ...s.result, status: "fail", output: `last result is ${now - s.measuredAt} ms old: the check is hung` };
      }
      checks[s.check.name] = [result];
      const effective = result.status === "fail" && s.check.critical === false ? "warn" : result.status;
      status = worst(status, effective);
    }
    return { status, ...(this.options.serviceId ? { serviceId: this.options.serviceId } : {}), checks };
  }

  /** Liveness: the process answers. Uptime is the observed value. */
  liveness(): HealthReport {
    return { status: "pass", checks: { "process:uptime": [{ status: "pass", componentType: "system", observedValue: Math.round((Date.now() - this.startedAt) / 1000), observedUnit: "s", time: new Date().toISOString() }] } };
  }

  /**
   * A `(req, res)` handler for node:http and Express (`app.get("/health", monitor.handler())`); for
   * Fastify use `reply.raw`: `(req, reply) => monitor.handler()(req.raw, reply.raw)`.
   * 200 for pass and warn, 503 for fail.
   */
  handler(kind: "health" | "live" | "ready" = "health"): (req: IncomingMessage, res: ServerResponse) => void {
    return (_req, res) => {
      const report = kind === "live" ? this.liveness() : this.report();
      const body = JSON.stringify(report);
      res.writeHead(report.status === "fail" ? 503 : 200, { "content-type": "application/health+json", "cache-control": "no-store", "content-length": Buffer.byteLength(body) });
      res.end(body);
    };
  }
}
