/**
 * Layer 2: the prod program without its secret settings refuses to preview, naming every missing one
 * with the command that sets it (secrets never live in the stack files, so nothing else would say so).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { MockHarness, ROOT } from "./harness";

describe("prod stack: required secrets", () => {
  it("without any secret setting, the program stops before declaring anything and names each missing secret", async () => {
    const h = new MockHarness();
    const settings = parse(readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8")).config as Record<string, unknown>;
    await h.install("prod", settings); // the stack file's settings, no `pulumi config set --secret`
    assert.throws(() => require("../../index"), {
      name: "StackConfigError",
      message: [
        "Invalid stack configuration (5 problems):",
        "  - shopfds:slackWebhookUrl: is required (critical alerts must reach Slack): pulumi config set --secret --stack prod slackWebhookUrl https://hooks.slack.com/services/…",
        "  - shopfds:smtpPassword: is required (the SMTP relay's user shopfds-ses needs its password): pulumi config set --secret --stack prod smtpPassword …",
        "  - shopfds:backupAccessKeyId: is required (PostgreSQL backups are written to the object store with this key): pulumi config set --secret --stack prod backupAccessKeyId AKIA…",
        "  - shopfds:backupSecretAccessKey: is required (the object store key's secret): pulumi config set --secret --stack prod backupSecretAccessKey …",
        "  - sentry:token: is required (the Sentry provider creates the project and its DSN with it): pulumi config set --secret --stack prod sentry:token sntrys_…",
      ].join("\n"),
    });
    assert.deepEqual(h.resources, [], "nothing was declared");
  });
});
