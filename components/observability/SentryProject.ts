/**
 * The stack's Sentry project, one per environment (dev, staging, production; FR-024), declared with the
 * Pulumi Sentry provider (@pulumiverse/sentry), and a client key whose DSN the stack exports for the
 * runtime's `initSentry`. The provider's token is its own secret setting (`sentry:token`).
 */
import * as pulumi from "@pulumi/pulumi";
import * as sentry from "@pulumiverse/sentry";

export type SentryEnvironment = "dev" | "staging" | "production";

export interface SentryProjectArgs {
  readonly organization: string;
  readonly team: string;
  readonly environment: SentryEnvironment;
}

export class ShopSentryProject extends pulumi.ComponentResource {
  declare readonly dsn: pulumi.Output<string>;
  declare readonly environment: SentryEnvironment;

  constructor(name: string, args: SentryProjectArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:observability:SentryProject", name, {}, opts);
    const slug = `shopfds-${args.environment}`;
    const project = new sentry.SentryProject(
      `${name}-project`,
      { organization: args.organization, teams: [args.team], name: `ShopFDS (${args.environment})`, slug, platform: "node" },
      { parent: this },
    );
    const key = new sentry.SentryKey(`${name}-key`, { organization: args.organization, project: project.slug.apply((s) => s ?? slug), name: `${slug}-runtime` }, { parent: this });
    // A DSN lets anyone send events to the project: kept secret like a password.
    this.dsn = pulumi.secret(key.dsnPublic);
    this.environment = args.environment;
    this.registerOutputs({ dsn: this.dsn, environment: this.environment });
  }
}
