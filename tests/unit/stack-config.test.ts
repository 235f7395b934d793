/** Layer 1: the stack configuration schema, its defaults, its error messages, and the shipped stack files. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { cidrWithin, NON_PUBLIC_CIDRS, parseStackConfig, SENTRY_INGEST_CIDRS, StackConfigError, type DockerStackConfig } from "../../components/config";

/** A stack file's settings as `pulumi.Config` would hand them to index.ts. */
function stackFile(stack: string): Record<string, unknown> {
  const config = parse(readFileSync(path.join(__dirname, "../..", `Pulumi.${stack}.yaml`), "utf8")).config as Record<string, unknown>;
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k.replace(/^shopfds:/, ""), v]));
}

/** A Docker stack's settings (the config is a union on platform). */
function docker(raw: Record<string, unknown>): DockerStackConfig {
  const cfg = parseStackConfig(raw);
  assert.equal(cfg.platform, "docker");
  return cfg as DockerStackConfig;
}

describe("stack configuration", () => {
  it("dev stack file: Docker, one replica", () => {
    const cfg = parseStackConfig(stackFile("dev"));
    assert.equal(cfg.platform, "docker");
    assert.equal(cfg.postgres.replicas, 1);
    assert.equal(cfg.postgres.hostPort, 15432);
  });

  it("prod stack file: Kubernetes, two replicas, production resources", () => {
    const cfg = parseStackConfig(stackFile("prod"));
    assert.equal(cfg.platform, "kubernetes");
    assert.deepEqual(cfg.kubernetes, { namespace: "shopfds-prod", context: "shopfds-prod", protect: true, operators: "install", ingressNamespace: "ingress-nginx", clusterDomain: "cluster.local" });
    assert.equal(cfg.postgres.image, "ghcr.io/cloudnative-pg/postgresql:15.13-system-bookworm");
    assert.deepEqual(cfg.backup, { enabled: true, destinationPath: "s3://shopfds-backups/prod", retention: "30d", schedule: "0 0 3 * * *" });
    assert.equal(cfg.postgres.replicas, 2);
    assert.deepEqual(cfg.postgres.resources, { cpu: "2", memory: "8Gi" });
    assert.equal(cfg.postgres.storageSize, "100Gi");
  });

  it("names the Docker engine: the local socket by default, a bad host named", () => {
    assert.deepEqual(docker({ platform: "docker" }).docker, { host: "unix:///var/run/docker.sock" });
    assert.equal(docker({ platform: "docker", docker: { host: "ssh://ops@build-1" } }).docker.host, "ssh://ops@build-1");
    assert.throws(() => parseStackConfig({ platform: "docker", docker: { host: "/var/run/docker.sock" } }), {
      message: 'Invalid stack configuration (1 problem):\n  - shopfds:docker.host: must be a Docker host such as unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host (got "/var/run/docker.sock")',
    });
  });

  it("defaults replicas by platform: 1 on docker, 2 on kubernetes", () => {
    assert.equal(parseStackConfig({ platform: "docker" }).postgres.replicas, 1);
    assert.equal(parseStackConfig({ platform: "kubernetes", kubernetes: { namespace: "x", context: "x" }, smtp: { host: "relay", from: "a@b.c" }, backup: { enabled: false } }).postgres.replicas, 2);
  });

  it("the reference service: one instance on dev by default, two with a public URL in prod; bad values named", () => {
    assert.deepEqual(parseStackConfig(stackFile("dev")).service, { enabled: true, replicas: 1, resources: { cpu: "250m", memory: "256Mi" }, hostPort: 18080 });
    const prod = parseStackConfig(stackFile("prod")).service;
    assert.deepEqual([prod.replicas, prod.publicUrl], [2, "https://shop.shopfds.example"]);
    assert.throws(() => parseStackConfig({ platform: "docker", service: { replicas: 0, publicUrl: "shop.example" } }), (e: unknown) => {
      assert.ok(e instanceof StackConfigError);
      assert.deepEqual(e.problems, ["shopfds:service.replicas: must be at least 1 (got 0)", 'shopfds:service.publicUrl: must be an absolute URL such as https://shop.example (got "shop.example")']);
      return true;
    });
  });

  it("egress beyond the stack: public addresses for SMTP and Sentry's listed ingest by default, a namespace on kind; bad blocks named", () => {
    const prod = parseStackConfig(stackFile("prod"));
    assert.ok(prod.platform === "kubernetes");
    assert.deepEqual(prod.egress.smtp, { cidrs: ["0.0.0.0/0", "::/0"], except: [...NON_PUBLIC_CIDRS] });
    assert.deepEqual(prod.egress.sentry, [...SENTRY_INGEST_CIDRS]);
    assert.deepEqual(prod.egress.dns, { namespace: "kube-system", podLabels: { "k8s-app": "kube-dns" } });
    const kind = parseStackConfig(stackFile("kind"));
    assert.ok(kind.platform === "kubernetes");
    assert.deepEqual(kind.egress.smtp, { namespace: "mail" });
    const base = { platform: "kubernetes", kubernetes: { namespace: "x", context: "x" }, smtp: { host: "relay", from: "a@b.c" }, backup: { enabled: false } };
    assert.throws(
      () => parseStackConfig({ ...base, egress: { smtp: { cidrs: ["52.79.0.0/16"], except: ["10.0.0.0/8", "52.79.1.0/24"], namespace: "mail" }, sentry: ["34.120.195.249"], otlp: { peer: { cidrs: ["10.1.0.0/33"] }, port: 4317 } } }),
      (e: unknown) => {
        assert.ok(e instanceof StackConfigError);
        assert.deepEqual(e.problems, [
          "shopfds:egress.smtp: must set either cidrs or namespace (not both, not neither)",
          'shopfds:egress.smtp.except.0: must lie inside one of cidrs (got "10.0.0.0/8")',
          'shopfds:egress.sentry.0: must be a CIDR block such as 203.0.113.0/24 or 2001:db8::/32 (got "34.120.195.249")',
          'shopfds:egress.otlp.peer.cidrs.0: must be a CIDR block such as 203.0.113.0/24 or 2001:db8::/32 (got "10.1.0.0/33")',
        ]);
        return true;
      },
    );
    // Tracing on Kubernetes needs a way out to its collector; its endpoint and ratio are checked.
    const traced = { ...base, tracing: { otlpEndpoint: "http://otel-collector.observability:4318" } };
    assert.throws(() => parseStackConfig(traced), (e: unknown) => e instanceof StackConfigError && e.problems.length === 1 && /^shopfds:egress\.otlp: is required when tracing is set on Kubernetes: .*http:\/\/otel-collector\.observability:4318/.test(e.problems[0]!));
    const ok = parseStackConfig({ ...traced, egress: { otlp: { peer: { namespace: "observability" }, port: 4318 } } });
    assert.deepEqual(ok.tracing, { otlpEndpoint: "http://otel-collector.observability:4318", sampleRatio: 1 });
    assert.throws(
      () => parseStackConfig({ ...base, tracing: { otlpEndpoint: "otel-collector:4317", sampleRatio: 2 }, egress: { otlp: { peer: { namespace: "o" }, port: 4317 } } }),
      (e: unknown) => e instanceof StackConfigError && e.problems.some((p) => p.startsWith("shopfds:tracing.otlpEndpoint: must be an http:// or https:// URL")) && e.problems.some((p) => p.startsWith("shopfds:tracing.sampleRatio: must be from 0 to 1")),
    );
    assert.equal(cidrWithin("fc00::/7", "::/0"), true);
    assert.equal(cidrWithin("fc00::/7", "0.0.0.0/0"), false, "another family");
    assert.equal(cidrWithin("10.0.0.0/8", "10.0.0.0/16"), false, "wider than the block");
  });

  it("names every bad or missing key and what is wrong with it, all at once", () => {
    assert.throws(
      () => parseStackConfig({ platform: "nomad", postgres: { replicas: 0, sharedBuffers: "1G", resources: { cpu: "lots", memory: "1Gi" }, colour: "red" } }),
      (e: unknown) => {
        assert.ok(e instanceof StackConfigError);
        assert.deepEqual(e.problems, [
          'shopfds:platform: must be "docker" or "kubernetes" (got "nomad")',
          "shopfds:postgres.replicas: must be at least 1 (FR-001) (got 0)",
          'shopfds:postgres.sharedBuffers: must be a PostgreSQL size such as 128MB (units kB, MB, GB, TB) (got "1G")',
          'shopfds:postgres.resources.cpu: must be a Kubernetes quantity such as 500m, 512Mi or 10Gi (got "lots")',
          "shopfds:postgres: unknown setting colour",
        ]);
        return true;
      },
    );
  });

  it("reports a missing platform and a missing namespace as required", () => {
    assert.throws(() => parseStackConfig({}), { message: "Invalid stack configuration (1 problem):\n  - shopfds:platform: is required" });
    assert.throws(() => parseStackConfig({ platform: "kubernetes" }), {
      message:
        'Invalid stack configuration (3 problems):\n  - shopfds:kubernetes: is required when platform is "kubernetes" (set kubernetes.namespace)' +
        '\n  - shopfds:backup.destinationPath: is required when platform is "kubernetes" (where PostgreSQL\'s WAL and base backups go, e.g. s3://shopfds-backups/prod; a throw-away cluster sets backup.enabled: false)' +
        '\n  - shopfds:smtp: is required when platform is "kubernetes" (the e-mail tasks need a relay: set smtp.host and smtp.from)',
    });
  });

  it("Kubernetes PostgreSQL: an operand image, backups to S3, restore into a new backup folder; each mistake named", () => {
    const base = { platform: "kubernetes", kubernetes: { namespace: "x", context: "x" }, smtp: { host: "relay", from: "a@b.c" } };
    assert.equal(parseStackConfig({ ...base, backup: { enabled: false } }).postgres.image, "ghcr.io/cloudnative-pg/postgresql:15.13-system-bookworm");
    assert.equal(parseStackConfig({ platform: "docker" }).postgres.image, "postgres:15.8-bookworm");
    assert.deepEqual([parseStackConfig({ ...base, backup: { enabled: false } }).rabbitmq.image, parseStackConfig({ platform: "docker" }).rabbitmq.image], ["rabbitmq:3.13.7-management", "rabbitmq:3.13.7-management"]);
    for (const image of ["rabbitmq:3.12-management", "rabbitmq:management"]) {
      assert.throws(() => parseStackConfig({ ...base, backup: { enabled: false }, rabbitmq: { image } }), {
        message: `Invalid stack configuration (1 problem):\n  - shopfds:rabbitmq.image: must be RabbitMQ 3.13 or later on Kubernetes (the cluster operator's supported versions), tagged as such, e.g. rabbitmq:3.13.7-management (got "${image}")`,
      });
    }
    assert.equal(parseStackConfig({ ...base, backup: { enabled: false }, rabbitmq: { image: "rabbitmq:4.1-management" } }).rabbitmq.image, "rabbitmq:4.1-management");
    assert.throws(
      () =>
        parseStackConfig({
          ...base,
          postgres: { image: "postgres:15-bookworm", restore: { fromServerName: "shopfds-prod-pg", targetTime: "yesterday" } },
          backup: { destinationPath: "shopfds-backups/prod", serverName: "shopfds-prod-pg", schedule: "0 3 * * *" },
        }),
      (e: unknown) => {
        assert.ok(e instanceof StackConfigError);
        assert.deepEqual(e.problems, [
          'shopfds:postgres.restore.targetTime: must be an RFC 3339 time with offset such as 2026-11-29T08:00:00+09:00 (got "yesterday")',
          'shopfds:backup.destinationPath: must be an S3 location such as s3://shopfds-backups/prod (got "shopfds-backups/prod")',
          'shopfds:backup.schedule: must be a six-field cron expression such as 0 0 3 * * * (got "0 3 * * *")',
          'shopfds:postgres.image: must be a CloudNativePG operand image on Kubernetes, such as ghcr.io/cloudnative-pg/postgresql:15.13-system-bookworm (got "postgres:15-bookworm": the official image lacks the operator\'s instance manager tools)',
          "shopfds:backup.serverName: must differ from postgres.restore.fromServerName (shopfds-prod-pg): the restored cluster archives into a new folder",
        ]);
        return true;
      },
    );
    assert.throws(
      () => parseStackConfig({ ...base, postgres: { restore: { fromServerName: "shopfds-prod-pg" } }, backup: { destinationPath: "s3://bkp/prod", serverName: "shopfds-prod-pg" } }),
      (e: unknown) => {
        assert.ok(e instanceof StackConfigError);
        assert.deepEqual(e.problems, [
          "shopfds:backup.serverName: must differ from postgres.restore.fromServerName (shopfds-prod-pg): the restored cluster archives into a new folder",
        ]);
        return true;
      },
    );
  });
  it("a Kubernetes stack must name its kubeconfig context (an explicit provider, never the current context)", () => {
    assert.throws(() => parseStackConfig({ platform: "kubernetes", kubernetes: { namespace: "x" }, smtp: { host: "relay", from: "a@b.c" }, backup: { enabled: false } }), {
      message: "Invalid stack configuration (1 problem):\n  - shopfds:kubernetes.context: is required",
    });
  });

  it("is a union on platform: each branch takes its own settings and refuses the other's, with its defaults in the schema", () => {
    const k8s = { platform: "kubernetes", kubernetes: { namespace: "x", context: "x" }, smtp: { host: "relay", from: "a@b.c" }, backup: { enabled: false } };
    assert.throws(() => parseStackConfig({ platform: "docker", postgres: { restore: { fromServerName: "old" } }, logging: { nodes: 3 }, backup: { enabled: false } }), {
      message: "Invalid stack configuration (3 problems):\n  - shopfds:postgres: unknown setting restore\n  - shopfds:logging: unknown setting nodes\n  - shopfds: unknown setting backup",
    });
    assert.throws(() => parseStackConfig({ ...k8s, redis: { hostPort: 16379 }, docker: { host: "unix:///var/run/docker.sock" } }), {
      message: "Invalid stack configuration (2 problems):\n  - shopfds:redis: unknown setting hostPort\n  - shopfds: unknown setting docker",
    });
    const d = docker({ platform: "docker" });
    assert.deepEqual([d.postgres.image, d.postgres.replicas, d.postgres.hostPort, d.jobs.flower.hostPort, d.rabbitmq.image], ["postgres:15.8-bookworm", 1, 15432, 15555, "rabbitmq:3.13.7-management"]);
    const k = parseStackConfig(k8s);
    assert.ok(k.platform === "kubernetes");
    assert.deepEqual([k.postgres.image, k.postgres.replicas, k.rabbitmq.replicas, k.logging.nodes, k.monitoring.size, k.kubernetes.namespace], ["ghcr.io/cloudnative-pg/postgresql:15.13-system-bookworm", 2, 3, 3, "production", "x"]);
  });
});
