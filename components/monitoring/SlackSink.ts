/**
 * A Slack-compatible webhook sink for Docker stacks without `slackWebhookUrl`: the service image's
 * webhook sink (service/bin/webhook-sink.ts) keeps each message Alertmanager sends. Kubernetes stacks
 * refuse to deploy without the real webhook (components/config.ts, requiredSecrets).
 */
import * as pulumi from "@pulumi/pulumi";
import { Platform, SERVICE_IMAGE_USER } from "../platform/types";
import { imageCommand } from "../service/image";

const PORT = 8080;

export interface SlackSinkArgs {
  readonly platform: Platform;
  /** The service image. */
  readonly image: string;
  /** The `instance` label (the monitoring stack's name). */
  readonly instance: string;
}

export class SlackSink extends pulumi.ComponentResource {
  /** The webhook URL Alertmanager posts to (secret, as the real one is). */
  declare readonly webhookUrl: pulumi.Output<string>;

  constructor(name: string, args: SlackSinkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:monitoring:SlackSink", name, {}, opts);
    const sink = args.platform.deploy(
      {
        name,
        role: "webhook-sink",
        instance: args.instance,
        image: args.image,
        runAs: SERVICE_IMAGE_USER,
        command: imageCommand("webhookSink", String(PORT), "/tmp/slack-messages"),
        ports: [{ name: "http", port: PORT }],
        healthCheck: { command: ["node", "-e", `fetch('http://127.0.0.1:${PORT}/-/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`], intervalSeconds: 15, timeoutSeconds: 5, retries: 3, startPeriodSeconds: 10 },
        resources: { cpu: "25m", memory: "64Mi" },
        replicas: 1,
      },
      this,
    );
    this.webhookUrl = pulumi.secret(`http://${sink.internalHost(0)}:${PORT}/slack`);
  }
}
