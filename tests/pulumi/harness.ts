/**
 * The one Pulumi mock harness (pulumi.runtime.setMocks). It records every resource the program
 * registers, fills the outputs a real provider would compute (random passwords as secrets, image ids,
 * Kubernetes names) and rejects any resource type or provider call it does not know, so a program that
 * silently renders nothing (a Helm chart or YAML group that needs a provider call) fails instead of passing.
 *
 * Each test file runs in its own process (node --test), so the global mock and config state of one
 * program never leaks into another.
 */
import * as pulumi from "@pulumi/pulumi";
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { getMonitor } from "@pulumi/pulumi/runtime/settings";

/** The parts of Pulumi's RegisterResourceRequest (protobuf) the harness reads. */
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getDependenciesList(): string[];
  getProtect(): boolean | undefined;
  getRetainondelete(): boolean | undefined;
  getCustomtimeouts(): { getCreate(): string } | undefined;
  getParent(): string;
}
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

export const ROOT = path.resolve(__dirname, "../..");

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  /** Inputs with secrets unwrapped to their values. */
  readonly inputs: Record<string, any>;
  /** Inputs as the engine received them: secret values wrapped in Pulumi's secret signature. */
  readonly rawInputs: Record<string, any>;
  /** The explicit provider's reference (`urn::id`), when one was given. */
  readonly provider?: string;
  /** URNs of the resources it was declared to depend on (`dependsOn`, and those its inputs came from). */
  readonly dependencies: readonly string[];
  /** Its `protect` and `retainOnDelete` options. */
  readonly protect: boolean;
  readonly retainOnDelete: boolean;
  /** Its `customTimeouts.create`, when set (e.g. "30m"). */
  readonly createTimeout?: string;
  /** The URN of its parent component ("" for the stack itself). */
  readonly parent: string;
}

type RegisteredOptions = Pick<RecordedResource, "dependencies" | "protect" | "retainOnDelete" | "createTimeout" | "parent">;

const isSecretWrapper = (v: any): boolean => v !== null && typeof v === "object" && v[specialSigKey] === specialSecretSig;

/** One-shot job containers the mocks report as exited 1 (MockHarness.failJob). */
const failingJobs = new Set<string>();

/** Secret settings per stack, as an operator would set them with `pulumi config set --secret`. */
export const TEST_SECRETS: Record<string, Record<string, string>> = {
  prod: {
    "shopfds:slackWebhookUrl": "https://hooks.slack.com/services/T000/B000/prodsecretwebhook",
    "shopfds:smtpPassword": "prod-smtp-secret-password",
    "sentry:token": "sntrys_prod-test-token",
    "shopfds:backupAccessKeyId": "AKIAPRODTESTKEY",
    "shopfds:backupSecretAccessKey": "prod-backup-secret-access-key",
  },
  // scripts/e2e-kind.sh sets this one.
  kind: { "shopfds:slackWebhookUrl": "https://hooks.slack.com/services/T0000/B0000/kind-e2e-not-a-real-hook" },
  staging: {
    "shopfds:slackWebhookUrl": "https://hooks.slack.com/services/T000/B000/stagingwebhook",
    "shopfds:smtpPassword": "staging-smtp-secret-password",
    "sentry:token": "sntrys_staging-test-token",
    "shopfds:backupAccessKeyId": "AKIASTAGINGTESTKEY",
    "shopfds:backupSecretAccessKey": "staging-backup-secret-access-key",
  },
};

/** Removes Pulumi's secret wrappers, leaving the values. */
export function unwrapSecrets(v: any): any {
  if (isSecretWrapper(v)) return unwrapSecrets(v.value);
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
  return v;
}

/** Every string in `raw` that is not inside a secret: where a leaked password would show. */
export function plainStrings(raw: any): string[] {
  if (isSecretWrapper(raw)) return [];
  if (typeof raw === "string") return [raw];
  if (Array.isArray(raw)) return raw.flatMap(plainStrings);
  if (raw !== null && typeof raw === "object") return Object.values(raw).flatMap(plainStrings);
  return [];
}

/** What each known resource type computes beyond its inputs. */
const COMPUTED: Record<string, (name: string, inputs: Record<string, any>) => Record<string, unknown>> = {
  // The real provider marks `result` secret (additionalSecretOutputs, which mocks ignore): emulate it.
  "random:index/randomPassword:RandomPassword": (name, inputs) => ({ result: pulumi.secret(mockPassword(name, inputs)) }),
  "docker:index/network:Network": (name, inputs) => ({ name: inputs.name ?? name }),
  "docker:index/volume:Volume": (name, inputs) => ({ name: inputs.name ?? name }),
  "docker:index/remoteImage:RemoteImage": (_name, inputs) => ({ imageId: `sha256:mock-${inputs.name}`, repoDigest: `${inputs.name}@sha256:mock` }),
  "docker:index/container:Container": (name, inputs) => ({ name: inputs.name ?? name, exitCode: failingJobs.has(name) ? 1 : 0, containerLogs: failingJobs.has(name) ? "error: migration 0008 failed: relation \"orders\" does not exist" : "" }),
  "random:index/randomId:RandomId": (name) => ({ hex: "0a0b0c0d", b64Url: "CgsMDQ", b64Std: "CgsMDQ==", dec: "168496141", id: `${name}-id` }),
  "kubernetes:core/v1:Namespace": k8sNamed,
  "kubernetes:core/v1:ConfigMap": k8sNamed,
  "kubernetes:core/v1:Secret": k8sNamed,
  "kubernetes:core/v1:Service": k8sNamed,
  "kubernetes:apps/v1:StatefulSet": k8sNamed,
  "kubernetes:policy/v1:PodDisruptionBudget": k8sNamed,
  "kubernetes:batch/v1:Job": k8sNamed,
  "kubernetes:apps/v1:Deployment": k8sNamed,
  "kubernetes:apps/v1:DaemonSet": k8sNamed,
  "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": k8sNamed,
  "kubernetes:networking.k8s.io/v1:NetworkPolicy": k8sNamed,
  "kubernetes:networking.k8s.io/v1:Ingress": k8sNamed,
  "kubernetes:core/v1:ServiceAccount": k8sNamed,
  "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole": k8sNamed,
  "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding": k8sNamed,
  // A Helm release is rendered and applied by the provider; under mocks it is its inputs.
  "kubernetes:helm.sh/v3:Release": (name, inputs) => ({ name: inputs.name ?? name, status: { status: "deployed", namespace: inputs.namespace, version: inputs.version } }),
  // yaml/v2 is a provider-side component: the provider reads the file and creates its objects.
  "kubernetes:yaml/v2:ConfigFile": () => ({ resources: [] }),
  "sentry:index/sentryProject:SentryProject": (name, inputs) => ({ slug: inputs.slug ?? name, internalId: "4500000" }),
  "sentry:index/sentryKey:SentryKey": (name) => ({ dsnPublic: `https://mock${name.replace(/[^a-z0-9]/g, "")}@o0.ingest.sentry.io/4500000`, public: "mockpublic" }),
};

/**
 * A recognisable stand-in for a generated password, honouring what the real provider would: with
 * `special: false` only letters and digits (renderers rely on that), padded to `length`.
 */
const mockPassword = (name: string, inputs: { length?: number; special?: boolean }) => {
  const base = inputs.special === false ? `mockPassword${name.replace(/[^A-Za-z0-9]/g, "")}` : `mock-password-${name}`;
  return base.padEnd(inputs.length ?? 16, "x");
};

/** `kubernetes:<group>/<version>:<Kind>` of an operator's kind (a dotted group that is not Kubernetes' own). */
function isCustomResourceType(type: string): boolean {
  const m = /^kubernetes:([^/:]+)\/[^:]+:\w+$/.exec(type);
  return m !== null && m[1]!.includes(".") && !m[1]!.endsWith(".k8s.io") && m[1] !== "helm.sh";
}

function k8sNamed(name: string, inputs: Record<string, any>): Record<string, unknown> {
  // Kubernetes auto-names with a random suffix when metadata.name is absent.
  return { metadata: { ...inputs.metadata, name: inputs.metadata?.name ?? `${name}-mock1234` } };
}

/** A stack file's settings (`shopfds:postgres` → its object), as `pulumi config` holds them. */
export function stackSettings(stack: string): Record<string, unknown> {
  return parse(readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")).config as Record<string, unknown>;
}

export class MockHarness {
  readonly resources: RecordedResource[] = [];
  readonly errors: Error[] = [];

  /** Makes the mocked Docker provider report the container `name` as exited 1 (with an error in its logs). */
  failJob(name: string): void {
    failingJobs.add(name);
  }

  /**
   * Installs the mocks and the stack's configuration from `Pulumi.<stack>.yaml` (or `config`), with the
   * stack's secret settings (TEST_SECRETS) unless `config` is given without `secrets`.
   */
  async install(stack: string, config?: Record<string, unknown>, secretSettings?: Record<string, string>): Promise<void> {
    const settings = config ?? stackSettings(stack);
    // What `pulumi config set --secret` would hold for the stack (never in the stack files).
    const secrets: Record<string, string> = secretSettings ?? (config ? {} : (TEST_SECRETS[stack] ?? {}));
    pulumi.runtime.setAllConfig(
      { ...Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])), ...secrets },
      Object.keys(secrets),
    );
    await pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          if (args.type.startsWith("pulumi:providers:")) {
            this.resources.push({ type: args.type, name: args.name, inputs: unwrapSecrets(args.inputs), rawInputs: args.inputs, ...this.optionsOf(args.type, args.name) });
            return { id: `${args.name}-provider`, state: args.inputs };
          }
          const compute = args.type.startsWith("shopfds:") ? () => ({}) : (COMPUTED[args.type] ?? (isCustomResourceType(args.type) ? k8sNamed : undefined));
          if (!compute) return this.fail(`mock harness: unknown resource type ${args.type} (${args.name}); teach the harness what it computes`);
          const inputs = unwrapSecrets(args.inputs);
          this.resources.push({ type: args.type, name: args.name, inputs, rawInputs: args.inputs, provider: args.provider, ...this.optionsOf(args.type, args.name) });
          return { id: `${args.name}-id`, state: { ...args.inputs, ...compute(args.name, inputs) } };
        },
        call: (args) => this.fail(`mock harness: unexpected provider call ${args.token}; a resource rendered through it would be empty under mocks`),
      },
      "shopfds",
      stack,
      false,
    );
    // The mocks are not told a resource's options; the registration request is. Keep them, by type and name.
    const monitor = getMonitor() as unknown as { registerResource(req: RegisterRequest, cb: unknown): unknown };
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, cb) => {
      const createTimeout = req.getCustomtimeouts()?.getCreate() || undefined;
      this.options.set(`${req.getType()}::${req.getName()}`, { dependencies: req.getDependenciesList(), protect: req.getProtect() ?? false, retainOnDelete: req.getRetainondelete() ?? false, parent: req.getParent() ?? "", ...(createTimeout ? { createTimeout } : {}) });
      return register(req, cb);
    };
  }

  private readonly options = new Map<string, RegisteredOptions>();

  private optionsOf(type: string, name: string): RegisteredOptions {
    return this.options.get(`${type}::${name}`) ?? { dependencies: [], protect: false, retainOnDelete: false, parent: "" };
  }

  /** Whether `resource` was declared to depend on a resource of `type` named `name` (directly). */
  dependsOn(resource: RecordedResource, type: string, name: string): boolean {
    return resource.dependencies.some((urn) => urn.endsWith(`${type}::${name}`));
  }

  /** Installs the mocks for `stack` (as install does), runs index.ts, and waits until every resource is registered. */
  async runProgram(stack: string, config?: Record<string, unknown>, secretSettings?: Record<string, string>): Promise<typeof import("../../index")> {
    await this.install(stack, config, secretSettings);
    const program: typeof import("../../index") = require("../../index");
    await resolve(program.postgres);
    await this.settle();
    return program;
  }

  private fail(message: string): never {
    const error = new Error(message);
    this.errors.push(error);
    throw error;
  }

  /** The values the mocked random provider generated: none may appear outside a secret. */
  generatedPasswords(): string[] {
    return this.ofType("random:index/randomPassword:RandomPassword").map((r) => mockPassword(r.name, r.inputs));
  }

  /** Names of resources whose non-secret inputs contain a generated password. */
  leaks(): string[] {
    const passwords = this.generatedPasswords();
    return this.resources.filter((r) => plainStrings(r.rawInputs).some((s) => passwords.some((p) => s.includes(p)))).map((r) => `${r.type} ${r.name}`);
  }

  ofType(type: string): RecordedResource[] {
    return this.resources.filter((r) => r.type === type);
  }

  named(type: string, name: string): RecordedResource {
    const found = this.resources.find((r) => r.type === type && r.name === name);
    if (!found) throw new Error(`no ${type} named ${name}; have: ${this.ofType(type).map((r) => r.name).join(", ") || "none"}`);
    return found;
  }

  /** Waits until registrations stop arriving, then fails if the mocks rejected anything. */
  async settle(): Promise<void> {
    let last = -1;
    for (let stable = 0; stable < 5; ) {
      await new Promise((r) => setTimeout(r, 20));
      stable = this.resources.length === last ? stable + 1 : 0;
      last = this.resources.length;
    }
    if (this.errors.length > 0) throw new AggregateError(this.errors, this.errors.map((e) => e.message).join("; "));
  }
}

/** The program's exports that the outputs contract requires, resolved to plain values. */
export async function contractOutputs(program: { postgres: unknown; redis: unknown; fds: unknown; rabbitmq: unknown }): Promise<Record<string, unknown>> {
  return {
    postgres: (await resolve(program.postgres as pulumi.Input<unknown>)).value,
    redis: (await resolve(program.redis as pulumi.Input<unknown>)).value,
    fds: (await resolve(program.fds as pulumi.Input<unknown>)).value,
    rabbitmq: (await resolve(program.rabbitmq as pulumi.Input<unknown>)).value,
  };
}

/** The value of an Output (or plain value) and whether Pulumi treats it as secret. */
export async function resolve<T>(value: pulumi.Input<T>): Promise<{ value: T; secret: boolean }> {
  const out = pulumi.output(value);
  const [resolved, secret] = await Promise.all([new Promise<T>((r) => out.apply((v) => r(v as T))), pulumi.isSecret(out)]);
  return { value: resolved, secret };
}
