/** POST /reports (admin): records a report and enqueues it; GET /reports/:id its status; …/download the CSV. */
import { HttpError } from "@shopfds/runtime/http";
import { getReport, reportContent, requestReport, type Report } from "../../shop/reports";
import type { App, AppDeps } from "../deps";
import { account } from "../auth";

const UUID = "([0-9a-f-]{36})";

export function reportRoutes(deps: AppDeps) {
  const publicUrl = (deps.publicUrl ?? "").replace(/\/+$/, "");
  const reportView = (r: Report) => ({
    id: r.id,
    kind: r.kind,
    params: r.params,
    status: r.status,
    createdAt: r.createdAt,
    completedAt: r.completedAt,
    statusUrl: `${publicUrl}/reports/${r.id}`,
    ...(r.status === "completed" ? { downloadUrl: `${publicUrl}/reports/${r.id}/download` } : {}),
    ...(r.status === "failed" ? { error: r.error } : {}),
  });

  return async (app: App) => {
    app.post("/reports", async (request, reply) => {
      const admin = await account(request, deps.sessions, "admin");
      return reply.code(202).send(reportView(await requestReport(deps.db, deps.jobs, request.body as never, admin.userId)));
    });

    app.get(`/reports/:id${UUID}`, async (request, reply) => {
      await account(request, deps.sessions, "admin");
      const { id } = request.params as { id: string };
      const report = await getReport(deps.db, id);
      if (!report) throw new HttpError(404, "REPORT_NOT_FOUND", `report ${id} does not exist`, "id");
      return reply.send(reportView(report));
    });

    app.get(`/reports/:id${UUID}/download`, async (request, reply) => {
      await account(request, deps.sessions, "admin");
      const { id } = request.params as { id: string };
      const csv = await reportContent(deps.db, id);
      if (csv === undefined) throw new HttpError(404, "REPORT_NOT_READY", `report ${id} does not exist or is not completed yet`, "id");
      return reply.header("content-type", "text/csv; charset=utf-8").header("content-disposition", `attachment; filename="fds-report-${id}.csv"`).send(csv);
    });
  };
}
