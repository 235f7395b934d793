/** The database concern: "the database" for a platform, the replicated pair on Docker or CloudNativePG on Kubernetes. */
import type * as pulumi from "@pulumi/pulumi";
import { KubernetesPlatform } from "../platform/kubernetes";
import type { Platform } from "../platform/types";
import type { PostgresDeployment, PostgresSettings } from "./database";
import { PostgresReplicatedPair } from "./docker";
import { CnpgBackupArgs, CnpgPostgres } from "./kubernetes";

export type { PostgresDeployment, PostgresSettings };

export interface DatabaseArgs {
  readonly platform: Platform;
  readonly settings: PostgresSettings;
  /** Docker: the primary on 127.0.0.1:hostPort, the replicas on the following ports. */
  readonly hostPort?: number;
  /** Kubernetes: WAL archive and base backups (undefined: none). */
  readonly backup?: CnpgBackupArgs;
  /** Kubernetes: bootstrap from another cluster's backups. */
  readonly restore?: { readonly fromServerName: string; readonly targetTime?: string };
  /** Kubernetes: the operator's release. */
  readonly dependsOn?: readonly pulumi.Resource[];
}

export function declareDatabase(name: string, args: DatabaseArgs): PostgresDeployment {
  if (args.platform instanceof KubernetesPlatform) {
    return new CnpgPostgres(name, {
      ...args.settings,
      platform: args.platform,
      ...(args.backup ? { backup: args.backup } : {}),
      ...(args.restore ? { restore: args.restore } : {}),
      dependsOn: args.dependsOn ?? [],
    });
  }
  return new PostgresReplicatedPair(name, { ...args.settings, platform: args.platform, hostPort: args.hostPort });
}
