/**
 * The ShopFDS tasks and their schedule. Each task is idempotent:
 * - it runs under its task id in `task_log` (`once`): a task already done is not run again, so a
 *   redelivered message (a lost worker, a re-sent outbox entry) has no second effect;
 * - its effect is itself repeatable (a report rewrites its own row; the batch and the archive are
 *   set operations).
 *
 *   shopfds.send_order_confirmation  [orderId]            FR-016, through SMTP (nodemailer)
 *   shopfds.fds_batch_reevaluate     {scheduled_slot}     FR-017, daily 00:00: the whole rule set over the last 24 h (shop/reevaluate.ts)
 *   shopfds.generate_report          [reportId]           FR-018, a CSV report (kept in PostgreSQL) and its download link
 *   shopfds.archive_app_logs         {olderThanDays: 90}  FR-019, Sunday 02:00: finished task_log rows and app_logs past 90 days
 *   shopfds.check_stale_tasks        {}                   every 5 min: re-sends outbox entries, reports tasks waiting > 24 h
 */
import type { Transporter } from "nodemailer";
import type { Database } from "@shopfds/runtime/db";
import { reevaluateLastDay } from "./shop/reevaluate";
import type { FdsRulesOptions } from "@shopfds/runtime/fds";
import { purgeExpiredEntries } from "@shopfds/runtime/fds";
import { ORDER_EMAIL_TASK, type TaskSender } from "./shop/orders";
import { REPORT_TASK } from "./shop/reports";
import type { ScheduleEntry } from "@shopfds/runtime/jobs";
import { CompletionNotRecordedError, PostgresTaskResults, type TaskContext, type Worker } from "@shopfds/runtime/jobs";

export const TASKS = {
  orderEmail: ORDER_EMAIL_TASK,
  fdsBatch: "shopfds.fds_batch_reevaluate",
  report: REPORT_TASK,
  archiveLogs: "shopfds.archive_app_logs",
  staleTasks: "shopfds.check_stale_tasks",
  blacklistExpiry: "shopfds.blacklist_purge_expired",
  resultsPurge: "shopfds.task_results_purge",
} as const;

type TaskType = "email" | "batch" | "report" | "cleanup";

export interface ShopTaskDeps {
  readonly db: Database;
  readonly mailer: Transporter;
  /** The sender address. */
  readonly from: string;
  /** Prefix of report download links, e.g. `https://shop.example/reports` (the service serves them). */
  readonly reportsBaseUrl: string;
  /** The worker's retries after the first attempt (WorkerOptions.maxRetries); a report fails after the last. @default 3 */
  readonly maxRetries?: number;
  /** Re-sends outbox entries (the stale-task check). */
  readonly sender: TaskSender;
  readonly log?: (line: string) => void;
  /** The FDS rule settings the services use (the batch re-runs the same rules). @default FDS_RULE_DEFAULTS */
  readonly fdsRules?: FdsRulesOptions;
  /** Told the stale-task check's count of tasks waiting over 24 h (ServiceMetrics.setTasksWaitingOver24h). */
  readonly onStaleTasks?: (waitingOver24h: number) => void;
}

/** The schedule of FR-017 and FR-019 (and the stale-task check), read in `timezone`. */
export function shopSchedule(timezone: string): ScheduleEntry[] {
  return [
    { name: "fds-batch-daily", cron: "0 0 * * *", timezone, task: TASKS.fdsBatch },
    { name: "archive-app-logs-weekly", cron: "0 2 * * 0", timezone, task: TASKS.archiveLogs, kwargs: { olderThanDays: 90 } },
    { name: "stale-tasks", cron: "*/5 * * * *", timezone, task: TASKS.staleTasks },
    // Expired blacklist rows leave for the history (expired, by system:expiry); they are ignored already.
    { name: "blacklist-expiry-hourly", cron: "17 * * * *", timezone, task: TASKS.blacklistExpiry },
    // Chord results (celery_taskmeta) older than a day go, as Celery's backend_cleanup with result_expires.
    { name: "task-results-hourly", cron: "47 * * * *", timezone, task: TASKS.resultsPurge },
  ];
}

/** A task's claim: marks it running unless it is done already (exported for the bench's bare consumer). */
export const CLAIM_SQL = `INSERT INTO task_log (task_id, task_type, task_name, state, retries, args, started_at, worker)
     VALUES ($1, $2, $3, 'running', $4, $5, now(), $6)
     ON CONFLICT (task_id) DO UPDATE SET state = 'running', retries = EXCLUDED.retries, started_at = now(), worker = EXCLUDED.worker
       WHERE task_log.state <> 'done'
     RETURNING task_id`;

/**
 * A read the task needs first, made in its claim's statement (one round trip where two were): `sql` is a
 * SELECT of at most one row whose parameters start at `$7` (the claim's are `$1`–`$6`); it runs whether or
 * not the task is claimed, and its row (or none) is handed to the task.
 */
export interface ClaimRead {
  readonly sql: string;
  readonly params: readonly unknown[];
  /** The prepared statement's name (the router's `prepare`). */
  readonly prepare: string;
}

/** The claim and a read in one statement (the read's parameters start at `$7`). */
export const claimWithRead = (readSql: string): string =>
  `WITH claimed AS (${CLAIM_SQL}) SELECT EXISTS (SELECT 1 FROM claimed) AS claimed, r.* FROM (SELECT 1) AS one LEFT JOIN LATERAL (${readSql}) AS r ON true`;

/** Attempts at recording a task done once its effect went out, and the wait before each retry. */
const DONE_ATTEMPTS_MS = [0, 200, 600, 1500];

/**
 * Runs `fn` once per task id: marks the task running (unless it is done already, then returns
 * `{ skipped: "done before" }`), then done or failed. With `read`, the row it selects, read in the
 * claim's statement, is passed to `fn` (undefined when it selects none).
 *
 * Once `fn` returned, its effect went out (an e-mail sent): recording it done is tried for about 2 s;
 * if the database still cannot take it (no connection slot, the primary away), the task throws
 * CompletionNotRecordedError, so the worker's retry carries "effect done" in its message and that
 * attempt (`ctx.effectDone`) only records the completion: the effect is not repeated. The one window
 * left is a worker that dies between the effect and the retry's publish: the redelivery repeats it
 * (SMTP has no idempotency key; the e-mail's stable Message-ID lets a mail client show it as one).
 */
export async function once<T, R extends Record<string, unknown> = Record<string, unknown>>(
  db: Database,
  type: TaskType,
  ctx: TaskContext,
  args: unknown[],
  fn: (row: R | undefined) => Promise<T>,
  read?: ClaimRead,
): Promise<T | { skipped: string }> {
  if (ctx.effectDone) {
    await markDone(db, ctx);
    return { skipped: "effect done on an earlier attempt: completion recorded" };
  }
  const claim = [ctx.id, type, ctx.name, ctx.retries, JSON.stringify(args), ctx.hostname];
  let row: R | undefined;
  if (read === undefined) {
    const claimed = await db.query(CLAIM_SQL, claim, { prepare: "tasks.claim" });
    if (claimed.rowCount === 0) return { skipped: "done before" };
  } else {
    const { rows } = await db.query<{ claimed: boolean } & R>(
      claimWithRead(read.sql),
      [...claim, ...read.params],
      { target: "primary", prepare: read.prepare },
    );
    const { claimed, ...rest } = rows[0]!;
    if (!claimed) return { skipped: "done before" };
    // No row selected: the LEFT JOIN gives its columns as nulls, all of them.
    row = Object.values(rest).every((v) => v === null) ? undefined : (rest as unknown as R);
  }
  let result: T;
  try {
    result = await fn(row);
  } catch (error) {
    await db.query("UPDATE task_log SET state = 'failed', finished_at = now(), error = $2 WHERE task_id = $1", [ctx.id, String((error as Error).message).slice(0, 2000)]).catch(() => undefined);
    throw error;
  }
  let lastError: unknown;
  for (const wait of DONE_ATTEMPTS_MS) {
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    try {
      await markDone(db, ctx);
      return result;
    } catch (error) {
      lastError = error;
    }
  }
  throw new CompletionNotRecordedError(`task ${ctx.id} (${ctx.name}): its effect went out but recording it done failed ${DONE_ATTEMPTS_MS.length} times: ${(lastError as Error).message}`, { cause: lastError });
}

/** The attempt that recorded it counts (an effect-done retry records its own number). */
export const MARK_DONE_SQL = "UPDATE task_log SET state = 'done', finished_at = now(), error = NULL, retries = $2 WHERE task_id = $1";
const markDone = (db: Database, ctx: TaskContext) => db.query(MARK_DONE_SQL, [ctx.id, ctx.retries], { prepare: "tasks.done-v2" });

/** The order and what its confirmation e-mail says, read with the e-mail task's claim. */
export const ORDER_EMAIL_READ_SQL = `SELECT o.id, o.total_amount, o.currency, u.email, u.name,
         json_agg(json_build_object('name', p.name, 'quantity', i.quantity, 'price', i.unit_price) ORDER BY p.name) AS items
    FROM orders o JOIN users u ON u.id = o.user_id JOIN order_items i ON i.order_id = o.id JOIN products p ON p.id = i.product_id
   WHERE o.id = $7 GROUP BY o.id, u.id`;
export type OrderEmailRow = { id: string; total_amount: string; currency: string; email: string; name: string; items: { name: string; quantity: number; price: string }[] };

/** An order's confirmation e-mail (nodemailer's message options). */
export function orderEmail(order: OrderEmailRow, from: string) {
  const lines = order.items.map((i) => `  ${i.quantity} × ${i.name} @ ${i.price}`);
  return {
    from,
    to: order.email,
    subject: `ShopFDS order #${order.id} confirmed`,
    // Stable per order: a mail client shows a re-send as the same message.
    messageId: `<order-${order.id}@shopfds>`,
    text: [`Hello ${order.name},`, "", `thank you for your order #${order.id}:`, ...lines, "", `Total: ${order.total_amount} ${order.currency}`].join("\n"),
  };
}

const isPositiveId = (n: number): boolean => Number.isInteger(n) && n > 0;
const positiveId = (value: unknown, what: string): number => {
  const n = Number(value);
  if (!isPositiveId(n)) throw new TypeError(`${what}: must be a positive integer (got ${JSON.stringify(value)})`);
  return n;
};

export function registerShopTasks(worker: Worker, deps: ShopTaskDeps): void {
  const { db } = deps;

  worker.register(TASKS.orderEmail, (args, _kwargs, ctx) => {
    // A bad id fails inside the claimed task (task_log records why), with no read.
    const id = Number(args[0]);
    return once<{ orderId: number; to: string; messageId: string }, OrderEmailRow>(
      db,
      "email",
      ctx,
      args,
      async (order) => {
        const orderId = positiveId(args[0], "orderId");
        if (!order) throw new Error(`order ${orderId} does not exist`);
        const info = await deps.mailer.sendMail(orderEmail(order, deps.from));
        return { orderId, to: order.email, messageId: info.messageId };
      },
      isPositiveId(id) ? { sql: ORDER_EMAIL_READ_SQL, params: [id], prepare: "tasks.order-email" } : undefined,
    );
  });

  worker.register(TASKS.fdsBatch, (args, kwargs, ctx) =>
    once(db, "batch", ctx, args, async () => {
      const until = kwargs.scheduled_slot ? new Date(String(kwargs.scheduled_slot)) : new Date();
      if (Number.isNaN(until.getTime())) throw new TypeError(`scheduled_slot: must be an ISO date (got ${JSON.stringify(kwargs.scheduled_slot)})`);
      const result = await reevaluateLastDay(db, until, deps.fdsRules);
      deps.log?.(`fds batch up to ${until.toISOString()}: ${result.examined} transactions re-evaluated, ${result.escalated} scored higher (${JSON.stringify(result.decisions)})`);
      return result;
    }),
  );

  worker.register(TASKS.report, (args, _kwargs, ctx) =>
    once(db, "report", ctx, args, async () => {
      const reportId = String(args[0] ?? "");
      if (!/^[0-9a-f-]{36}$/.test(reportId)) throw new TypeError(`reportId: must be a report UUID (got ${JSON.stringify(args[0])})`);
      const { rows } = await db.query("UPDATE reports SET status = 'running', task_id = $2 WHERE id = $1 AND status <> 'completed' RETURNING kind, params", [reportId, ctx.id]);
      if (!rows[0]) return { reportId, skipped: "completed or unknown" };
      try {
        return await generateReport(reportId, rows[0].params as { days?: number });
      } catch (error) {
        // After the last retry (FR-021) the report is failed, with the reason, for whoever polls it.
        const last = ctx.retries >= (deps.maxRetries ?? 3);
        await db.query("UPDATE reports SET status = $2, error = $3 WHERE id = $1", [reportId, last ? "failed" : "queued", String((error as Error).message).slice(0, 2000)]).catch(() => undefined);
        throw error;
      }
    }),
  );

  async function generateReport(reportId: string, params: { days?: number }) {
    const data = await db.query(
      `SELECT date_trunc('day', created_at)::date AS day, decision, count(*)::int AS transactions, round(avg(risk_score), 1) AS avg_score
       FROM fds_transactions WHERE created_at >= now() - make_interval(days => $1) GROUP BY 1, 2 ORDER BY 1, 2`,
      [Number(params.days ?? 7)],
      { fresh: true },
    );
    const csv = ["day,decision,transactions,avg_score", ...data.rows.map((r) => `${(r.day as Date).toISOString().slice(0, 10)},${r.decision},${r.transactions},${r.avg_score}`)].join("\n") + "\n";
    // Stored in PostgreSQL, which the worker and every service instance share (no shared volume).
    await db.query("UPDATE reports SET status = 'completed', file_path = $2, content = $3, error = NULL, completed_at = now() WHERE id = $1", [reportId, `fds-report-${reportId}.csv`, csv]);
    return { reportId, rows: data.rowCount, url: `${deps.reportsBaseUrl}/${reportId}/download` };
  }

  worker.register(TASKS.archiveLogs, (args, kwargs, ctx) =>
    once(db, "cleanup", ctx, args, async () => {
      const days = Number(kwargs.olderThanDays ?? 90);
      if (!Number.isInteger(days) || days < 1) throw new TypeError(`olderThanDays: must be a positive integer (got ${JSON.stringify(kwargs.olderThanDays)})`);
      // The task log is what accumulates (a row per order e-mail, report and scheduled run); app_logs
      // holds what services choose to keep in PostgreSQL (their ECS lines go to Elasticsearch, whose ILM
      // policy ages them out). Finished task rows and log rows past the cutoff move to their archives.
      const { rows } = await db.query(
        "SELECT archive_task_log(now() - make_interval(days => $1), 10000) AS tasks, archive_app_logs(now() - make_interval(days => $1), 10000) AS logs",
        [days],
      );
      return { archived: { taskLog: Number(rows[0].tasks), appLogs: Number(rows[0].logs) }, olderThanDays: days };
    }),
  );

  worker.register(TASKS.blacklistExpiry, async () => ({ expired: await purgeExpiredEntries(db) }));
  worker.register(TASKS.resultsPurge, async () => ({ purged: await new PostgresTaskResults(db).purge() }));

  worker.register(TASKS.staleTasks, async () => {
    // Outbox entries never picked up (the publish after the commit failed): send them again, same id.
    const pending = await db.query<{ task_id: string; task_name: string; args: unknown[] }>(
      "SELECT task_id, task_name, args FROM task_log WHERE state = 'pending' AND created_at < now() - interval '5 minutes' ORDER BY created_at LIMIT 500",
      [],
      { fresh: true },
    );
    // As first sent: task_log records the outcome, no result message is wanted.
    for (const t of pending.rows) await deps.sender.send(t.task_name, t.args, {}, { id: t.task_id, ignoreResult: true });
    const stale = await db.query("SELECT count(*)::int AS n FROM task_log WHERE state IN ('pending', 'running') AND created_at < now() - interval '24 hours'", [], { fresh: true });
    deps.onStaleTasks?.(stale.rows[0].n);
    if (stale.rows[0].n > 0) deps.log?.(`ALERT: ${stale.rows[0].n} task(s) waiting more than 24 hours`);
    return { resent: pending.rowCount, waitingOver24h: stale.rows[0].n };
  });
}
