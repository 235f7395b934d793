/**
 * The stack-outputs contract: what a deployed ShopFDS stack exports and what services read to find
 * their infrastructure. index.ts exports exactly this shape, the local stack writes it to a file, and
 * `loadStackOutputs` reads it from wherever the environment keeps it.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { z } from "zod";
import { RULES } from "./rules";
import { ConfigurationError } from "./errors";

export const endpointSchema = z
  .object({
    host: z.string().min(1, "must be a host name or address"),
    port: RULES.port.schema,
  })
  .strict();

/** Verified TLS to a server (runtime/tls.ts): the CA that signs its certificate, and the name it carries when not the host. */
export const serverTlsSchema = z
  .object({
    caFile: z.string().regex(/^\//, "must be an absolute path"),
    serverName: z.string().min(1, "must be a DNS name").optional(),
  })
  .strict();

export const postgresOutputsSchema = z
  .object({
    primary: endpointSchema,
    replicas: z.array(endpointSchema).min(1, "must list at least one replica (FR-001)"),
    database: z.string().min(1),
    user: z.string().min(1),
    password: z.string().min(1, "must not be empty"),
    /** Connect with TLS, verifying the server against this CA (Kubernetes stacks: CloudNativePG's CA). */
    tls: serverTlsSchema.optional(),
    /**
     * Kubernetes stacks: a name with one address per replica pod (a headless Service), so the router
     * measures and reads each replica on its own; `replicas` (the `-ro` Service) is then the fallback.
     */
    replicaDiscovery: z.object({ host: z.string().min(1, "must be a DNS name"), port: RULES.port.schema, serverName: z.string().min(1).optional() }).strict().optional(),
  })
  .strict();

export const redisOutputsSchema = z
  .object({
    /** Every node of the cluster; a client needs one to discover the rest, all of them to survive losses. */
    nodes: z.array(endpointSchema).min(6, "must list the 6 nodes of the cluster (3 masters, 3 replicas)"),
    password: z.string().min(1, "must not be empty"),
    /**
     * Where the nodes announce themselves under names a client outside their network cannot reach
     * (Docker: container names), the address to use instead: `"host:port"` → endpoint.
     */
    natMap: z.record(z.string(), endpointSchema).optional(),
    /**
     * TLS only (Kubernetes stacks): verify every node against this CA. The nodes announce addresses, so
     * `serverName` is the name their shared certificate carries.
     */
    tls: serverTlsSchema.optional(),
  })
  .strict();

export const fdsOutputsSchema = z
  .object({
    /**
     * Keys of the card-number HMAC (hex), by version; the highest version hashes new entries, and every
     * listed version is checked, so a key can be rotated without losing entries.
     */
    cardHashKeys: z
      .array(
        z
          .object({
            version: z.number().int("must be an integer").min(1, "must be at least 1").max(32767, "must be at most 32767"),
            key: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 hex digits (a 256-bit key)"),
          })
          .strict(),
      )
      .min(1, "must hold at least one key"),
  })
  .strict();

export const rabbitMqOutputsSchema = z
  .object({
    /** The AMQP URL with the application user's credentials and the vhost (a secret). */
    url: z.string().regex(/^amqps?:\/\/[^:/@]+:[^@]+@[^/]+\/[^/]+$/, "must be amqp://user:password@host:port/vhost"),
    /** The management UI and HTTP API (queue lengths for Flower and the alerts). */
    managementUrl: z.string().url("must be an http(s) URL"),
    /** AMQPS (Kubernetes stacks): verify the broker against this CA; `url` is then amqps://. */
    tls: serverTlsSchema.optional(),
  })
  .strict()
  .refine((r) => !r.tls || r.url.startsWith("amqps://"), { path: ["url"], message: "must be amqps:// when tls is set (the broker takes TLS only)" });

export const smtpOutputsSchema = z
  .object({
    host: z.string().min(1, "must be a host name or address"),
    port: RULES.port.schema,
    /** TLS from the start (port 465); otherwise STARTTLS when the server offers it. */
    secure: z.boolean(),
    /** The sender, e.g. `ShopFDS <no-reply@shop.example>`. */
    from: z.string().min(3),
    user: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
  })
  .strict();

export const monitoringOutputsSchema = z
  .object({
    prometheusUrl: z.string().url("must be an http(s) URL"),
    alertmanagerUrl: z.string().url("must be an http(s) URL"),
  })
  .strict();

export const loggingOutputsSchema = z
  .object({
    /** Logstash's newline-delimited JSON input (ECS lines from the runtime's logger). */
    logstash: endpointSchema,
    kibanaUrl: z.string().url("must be an http(s) URL"),
  })
  .strict();

export const sentryOutputsSchema = z
  .object({
    dsn: z.string().url("must be a Sentry DSN"),
    environment: z.enum(["dev", "staging", "production"]),
  })
  .strict();

export const stackOutputsSchema = z.object({
  postgres: postgresOutputsSchema,
  redis: redisOutputsSchema,
  fds: fdsOutputsSchema,
  rabbitmq: rabbitMqOutputsSchema,
  /** Where the e-mail tasks send (the local stack's sink; a relay in deployed stacks when configured). */
  smtp: smtpOutputsSchema.optional(),
  /** Prometheus and Alertmanager, where the stack runs them. */
  monitoring: monitoringOutputsSchema.optional(),
  /** The ELK stack, where it is switched on. */
  logging: loggingOutputsSchema.optional(),
  /** The stack's Sentry project (its DSN is a secret). */
  sentry: sentryOutputsSchema.optional(),
});

export type Endpoint = z.infer<typeof endpointSchema>;
export type PostgresOutputs = z.infer<typeof postgresOutputsSchema>;
export type RedisOutputs = z.infer<typeof redisOutputsSchema>;
export type FdsOutputs = z.infer<typeof fdsOutputsSchema>;
export type RabbitMqOutputs = z.infer<typeof rabbitMqOutputsSchema>;
export type SmtpOutputs = z.infer<typeof smtpOutputsSchema>;
export type MonitoringOutputs = z.infer<typeof monitoringOutputsSchema>;
export type StackOutputs = z.infer<typeof stackOutputsSchema>;

/** Environment variable holding the outputs as JSON. */
export const OUTPUTS_JSON_ENV = "SHOPFDS_STACK_OUTPUTS";
/** Environment variable naming a file that holds the outputs as JSON (the local stack writes one). */
export const OUTPUTS_FILE_ENV = "SHOPFDS_OUTPUTS_FILE";
/** Environment variable naming a Pulumi stack to ask with `pulumi stack output --json --show-secrets`. */
export const PULUMI_STACK_ENV = "SHOPFDS_PULUMI_STACK";

export class StackOutputsError extends ConfigurationError {
  constructor(
    message: string,
    readonly source: string,
    options?: { cause?: unknown },
  ) {
    super(message, [], options);
  }
}

/**
 * Validates outputs against the contract. Errors name the output and the problem; they never echo a
 * value, since outputs include passwords.
 */
export function parseStackOutputs(value: unknown, source = "stack outputs"): StackOutputs {
  const result = stackOutputsSchema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.map(String).join(".") || "(root)"}: ${i.message}`);
    throw new StackOutputsError(`${source} do not match the stack-outputs contract:\n  - ${problems.join("\n  - ")}`, source);
  }
  return result.data;
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new StackOutputsError(`${source} is not valid JSON: ${(cause as Error).message}`, source, { cause });
  }
}

export type OutputsSource = { json: string } | { file: string } | { pulumiStack: string; cwd?: string };

/**
 * Reads the stack outputs from an explicit source, or else from the environment: `SHOPFDS_STACK_OUTPUTS`
 * (JSON), then `SHOPFDS_OUTPUTS_FILE` (a file), then `SHOPFDS_PULUMI_STACK` (the Pulumi CLI).
 */
export async function loadStackOutputs(source?: OutputsSource, env: NodeJS.ProcessEnv = process.env): Promise<StackOutputs> {
  const chosen: OutputsSource | undefined =
    source ??
    (env[OUTPUTS_JSON_ENV] ? { json: env[OUTPUTS_JSON_ENV] as string } : undefined) ??
    (env[OUTPUTS_FILE_ENV] ? { file: env[OUTPUTS_FILE_ENV] as string } : undefined) ??
    (env[PULUMI_STACK_ENV] ? { pulumiStack: env[PULUMI_STACK_ENV] as string } : undefined);
  if (!chosen) {
    throw new StackOutputsError(
      `no stack outputs: set ${OUTPUTS_JSON_ENV} (JSON), ${OUTPUTS_FILE_ENV} (a file, e.g. the local stack's outputs.json) or ${PULUMI_STACK_ENV} (a Pulumi stack name)`,
      "environment",
    );
  }
  if ("json" in chosen) return parseStackOutputs(parseJson(chosen.json, OUTPUTS_JSON_ENV), OUTPUTS_JSON_ENV);
  if ("file" in chosen) {
    let text: string;
    try {
      text = await readFile(chosen.file, "utf8");
    } catch (cause) {
      throw new StackOutputsError(`cannot read stack outputs file ${chosen.file}: ${(cause as Error).message}`, chosen.file, { cause });
    }
    return parseStackOutputs(parseJson(text, chosen.file), chosen.file);
  }
  const label = `pulumi stack ${chosen.pulumiStack}`;
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)("pulumi", ["stack", "output", "--json", "--show-secrets", "--stack", chosen.pulumiStack], {
      cwd: chosen.cwd,
      maxBuffer: 16 * 1024 * 1024,
    }));
  } catch (cause) {
    // The CLI's stderr may quote the command line but never the secrets; stdout is not included.
    throw new StackOutputsError(`cannot read outputs of ${label}: ${(cause as { stderr?: string }).stderr?.trim() || (cause as Error).message}`, label, { cause });
  }
  return parseStackOutputs(parseJson(stdout, label), label);
}
