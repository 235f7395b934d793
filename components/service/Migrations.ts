/**
 * The schema migrations, once per deployment, before any workload that uses the schema (FR-006): a
 * one-shot container on Docker, a Job on Kubernetes, with the service image and the outputs contract
 * (service/bin/migrate.ts applies the runtime's migrations, then the service's).
 */
import * as pulumi from "@pulumi/pulumi";
import { DeployedService, ExistingSecretFiles, Platform, SERVICE_IMAGE_USER } from "../platform/types";
import { JOB_PATHS } from "../jobs/JobRunners";
import { imageCommand } from "./image";

export interface MigrationsArgs {
  readonly platform: Platform;
  readonly image: string;
  /** The stack outputs as seen from inside (JSON, secret). */
  readonly outputsJson: pulumi.Input<string>;
  readonly contractFiles: readonly ExistingSecretFiles[];
  /** The database's services: the job waits for them. */
  readonly database: readonly DeployedService[];
}

export class Migrations extends pulumi.ComponentResource {
  /** Something dependants wait on: the migrations have run (named "migrations", on the database's first service). */
  declare readonly done: DeployedService;

  constructor(name: string, jobName: string, args: MigrationsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("shopfds:database:Migrations", name, {}, opts);
    const job = args.platform.runOnce(
      {
        name: jobName,
        role: "migrate",
        instance: jobName,
        image: args.image,
        command: imageCommand("migrate", "up"),
        env: { SHOPFDS_OUTPUTS_FILE: JOB_PATHS.outputs },
        secretFiles: [{ path: JOB_PATHS.outputs, content: pulumi.secret(args.outputsJson) }],
        existingSecretFiles: args.contractFiles,
        resources: { cpu: "100m", memory: "256Mi" },
        runAs: SERVICE_IMAGE_USER,
        dependsOn: args.database,
      },
      this,
    );
    this.done = { ...args.database[0]!, name: "migrations", resources: [job] };
  }
}
