/**
 * The last step of `make dev` where Docker and the Pulumi CLI exist (after `pulumi up` of the dev stack,
 * migrate and seed): provisions the dev admin, as the local stack's `apps` step does, and prints the same
 * addresses and versions the local stack prints, read from the stack's outputs. The service, workers
 * and scheduler already run as containers of the stack.
 *
 *   node --import tsx scripts/dev-docker.ts [--stack dev]
 */
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import * as path from "node:path";
import { parseStackOutputs } from "../runtime/outputs";
import { DEV_ADMIN_EMAIL, adminPasswordFile, provisionDevAdmin } from "./local-stack/apps";
import { serverVersions, serviceLines, stackLines } from "./local-stack/addresses";

async function main(): Promise<void> {
  const i = process.argv.indexOf("--stack");
  const stack = i >= 0 ? process.argv[i + 1]! : "dev";
  const all = JSON.parse(execFileSync("pulumi", ["stack", "output", "--stack", stack, "--json", "--show-secrets"], { encoding: "utf8", maxBuffer: 16 << 20 })) as Record<string, unknown>;
  const outputs = parseStackOutputs(all, `pulumi stack output --stack ${stack}`);
  const serviceUrl = all.serviceUrl as string | undefined;
  const flower = all.flower as { url: string; user: string } | undefined;
  // The dev admin's password: generated once, kept in a 0600 file beside the local stack's data (never printed).
  const dir = path.resolve(__dirname, "..", ".local-stack", `${stack}-docker`);
  mkdirSync(dir, { recursive: true });
  await provisionDevAdmin({ dir }, outputs);
  const versions = await serverVersions(outputs);
  console.log(
    [
      `ShopFDS dev stack "${stack}" is up on Docker (pulumi stack ${stack}; containers shopfds-${stack}-*):`,
      ...stackLines(outputs, versions, { smtp: "Mailpit: the mail in its UI, http://127.0.0.1:18025", monitoring: "alerts to the stack's Slack-compatible sink unless slackWebhookUrl is set" }),
      ...(serviceUrl ? serviceLines(serviceUrl, DEV_ADMIN_EMAIL, adminPasswordFile({ dir })) : ["  Service              off (shopfds:service.enabled)"]),
      `  Workers, scheduler   containers shopfds-${stack}-jobs-*${flower ? `; Flower ${flower.url} (user ${flower.user}; password: pulumi stack output flower --show-secrets)` : ""}`,
      `  Outputs (with the passwords): pulumi stack output --stack ${stack} --json --show-secrets  — or \`make outputs\``,
      `  Services find it with SHOPFDS_PULUMI_STACK=${stack}`,
    ].join("\n"),
  );
}

main().catch((e: Error) => {
  console.error(`dev-docker: ${e.message}`);
  process.exitCode = 1;
});
