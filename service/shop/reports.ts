/**
 * Reports on request (FR-018): `requestReport` records the report and its task in one transaction (the
 * task_log row is the outbox: if the publish after the commit fails, the stale-task check re-sends it),
 * a worker generates it (`shopfds.generate_report`), and `getReport` gives its status and, once
 * completed, the content behind the download link.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { Database } from "@shopfds/runtime/db";
import { BrokerUnavailableError } from "@shopfds/runtime/jobs";
import { OrderInputError, type OrderTaskSender } from "./orders";

export const REPORT_TASK = "shopfds.generate_report";
export const REPORT_KINDS = ["fds_daily"] as const;

const requestSchema = z
  .object({
    kind: z.enum(REPORT_KINDS, { error: (i) => `must be one of ${REPORT_KINDS.join(", ")} (got ${JSON.stringify(i.input)})` }),
    days: z.number({ error: "must be a number of days" }).int("must be a whole number of days").min(1, "must be at least 1").max(90, "must be at most 90").default(7),
  })
  .strict();
export type ReportRequest = z.input<typeof requestSchema>;

export type ReportStatus = "queued" | "running" | "completed" | "failed";

export interface Report {
  readonly id: string;
  readonly kind: string;
  readonly params: { days: number };
  readonly status: ReportStatus;
  readonly requestedBy: number | null;
  readonly createdAt: Date;
  readonly completedAt: Date | null;
  readonly fileName: string | null;
  readonly error: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export async function requestReport(db: Database, jobs: OrderTaskSender, input: ReportRequest, requestedBy: number): Promise<Report> {
  const parsed = requestSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new OrderInputError(issue.path.map(String).join(".") || "body", issue.message);
  }
  if (!jobs.connected) throw new BrokerUnavailableError("the report was not requested: the task broker (RabbitMQ) is not reachable now; retry shortly");
  const taskId = randomUUID();
  const report = await db.transaction(async (tx) => {
    const { rows } = await tx.query(
      `INSERT INTO reports (kind, params, requested_by, task_id) VALUES ($1, $2, $3, $4)
       RETURNING id, kind, params, status, requested_by, created_at, completed_at, file_path, error`,
      [parsed.data.kind, { days: parsed.data.days }, requestedBy, taskId],
    );
    await tx.query("INSERT INTO task_log (task_id, task_type, task_name, state, args) VALUES ($1, 'report', $2, 'pending', $3)", [taskId, REPORT_TASK, JSON.stringify([rows[0].id])]);
    return fromRow(rows[0]);
  });
  // Committed: sent now, or kept for the broker's return (as an order's e-mail is). Its outcome is the
  // report's row, which callers poll: no result message.
  await jobs.sendOrDefer(REPORT_TASK, [report.id], {}, { id: taskId, ignoreResult: true });
  return report;
}

/** The report, or undefined for an unknown (or malformed) id. Reads the replica, the primary on a miss. */
export async function getReport(db: Database, id: string): Promise<Report | undefined> {
  if (!UUID.test(id)) return undefined;
  const sql = "SELECT id, kind, params, status, requested_by, created_at, completed_at, file_path, error FROM reports WHERE id = $1";
  let { rows } = await db.query(sql, [id]);
  if (rows.length === 0 || rows[0].status !== "completed") ({ rows } = await db.query(sql, [id], { fresh: true }));
  return rows[0] ? fromRow(rows[0]) : undefined;
}

/** The CSV of a completed report, or undefined. */
export async function reportContent(db: Database, id: string): Promise<string | undefined> {
  if (!UUID.test(id)) return undefined;
  const { rows } = await db.query<{ content: string | null }>("SELECT content FROM reports WHERE id = $1 AND status = 'completed'", [id], { fresh: true });
  return rows[0]?.content ?? undefined;
}

function fromRow(r: Record<string, any>): Report {
  return {
    id: r.id,
    kind: r.kind,
    params: r.params,
    status: r.status,
    requestedBy: r.requested_by === null ? null : Number(r.requested_by),
    createdAt: r.created_at,
    completedAt: r.completed_at,
    fileName: r.file_path,
    error: r.error,
  };
}
