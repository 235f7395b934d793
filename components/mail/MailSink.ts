/**
 * E-mail on a Docker stack without a relay: a Mailpit sink (its UI shows what the tasks sent). A stack
 * with `shopfds:smtp` uses that relay instead, and Kubernetes stacks always do.
 */
import * as pulumi from "@pulumi/pulumi";
import { DeployedService, Endpoint, Platform, SERVICE_IMAGE_USER } from "../platform/types";

/** Mailpit's SMTP port inside the network. */
export const MAILPIT_SMTP = 1025;
/** The sender address of the dev stacks' mail. */
export const DEV_MAIL_FROM = "ShopFDS <no-reply@shopfds.local>";

export interface MailSinkArgs {
  readonly platform: Platform;
  readonly image: string;
}

export class MailSink extends pulumi.ComponentResource {
  declare readonly service: DeployedService;

  constructor(name: string, args: MailSinkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:mail:MailSink", name, {}, opts);
    this.service = args.platform.deploy(
      {
        name,
        role: "smtp-sink",
        instance: name,
        image: args.image,
        // Mailpit keeps mail in memory and listens above 1024: any unprivileged user will do.
        runAs: SERVICE_IMAGE_USER,
        ports: [
          { name: "smtp", port: MAILPIT_SMTP, hostPort: 11025 },
          { name: "http", port: 8025, hostPort: 18025 },
        ],
        healthCheck: { command: ["/mailpit", "readyz"], intervalSeconds: 10, timeoutSeconds: 3, retries: 3, startPeriodSeconds: 5 },
        resources: { cpu: "50m", memory: "64Mi" },
        replicas: 1,
      },
      this,
    );
  }

  /** Where the stack's workloads send mail. */
  get inside(): Endpoint {
    return { host: this.service.internalHost(0), port: MAILPIT_SMTP };
  }

  /** Where a developer's process sends mail (the published port). */
  get outside(): Endpoint {
    return this.service.instanceEndpoints("smtp")[0]!;
  }
}
