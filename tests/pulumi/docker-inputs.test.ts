/**
 * Layer 2: every container the dev program declares, in the forms the Docker provider parses (mocks
 * accept anything; the provider refuses e.g. `cpus: "500m"` on every container). Each rule is shown
 * catching a bad value.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { before, describe, it } from "node:test";
import { dockerCpus } from "../../components/platform/quantity";
import { dockerInputProblems } from "./docker-inputs";
import { MockHarness } from "./harness";

const h = new MockHarness();

before(async () => {
  await h.runProgram("dev");
});

const good = {
  cpus: "0.5",
  memory: 512,
  ports: [{ internal: 5432, external: 15432, ip: "127.0.0.1" }],
  restart: "unless-stopped",
  healthcheck: { tests: ["CMD", "pg_isready"], interval: "5s", timeout: "3s", retries: 6, startPeriod: "1m30s" },
  uploads: [{ file: "/run/secrets/x", content: "s", permissions: "0440" }],
  logOpts: { "max-size": "10m" },
};

describe("dev stack: container inputs as the Docker provider parses them", () => {
  it("every container of the dev program passes", () => {
    const containers = h.ofType("docker:index/container:Container");
    assert.ok(containers.length >= 15, `containers checked: ${containers.length}`);
    assert.deepEqual(containers.flatMap((c) => dockerInputProblems(c.name, c.inputs)), []);
    assert.deepEqual([...new Set(containers.map((c) => c.inputs.cpus))].sort(), ["0.05", "0.1", "0.2", "0.5"], "decimal CPUs, twice the request");
  });

  it("each rule catches a bad value, naming the field and the value (the old millicores first)", () => {
    assert.deepEqual(dockerInputProblems("c", good), []);
    const problems = (patch: Record<string, unknown>) => dockerInputProblems("c", { ...good, ...patch });
    assert.deepEqual(problems({ cpus: "500m" }), ['c: cpus "500m" is not a rational number of CPUs (Docker\'s --cpus: 0.5, 2, 1/2)']);
    assert.deepEqual(problems({ cpus: "0" }), ['c: cpus "0" must be more than 0']);
    assert.deepEqual(problems({ cpus: "0.0000000001" }), ['c: cpus "0.0000000001" is more precise than a nano-CPU']);
    assert.deepEqual(problems({ memory: "512Mi" }), ['c: memory "512Mi" is not a positive whole number of megabytes']);
    assert.deepEqual(problems({ ports: [{ internal: 70000, external: 0, ip: "localhost", protocol: "sctp" }] }), [
      "c: ports[0].internal 70000 is not a port (an integer from 1 to 65535)",
      "c: ports[0].external 0 is not a port (an integer from 1 to 65535)",
      'c: ports[0].ip "localhost" is not an IPv4 address',
      'c: ports[0].protocol "sctp" is not tcp or udp',
    ]);
    assert.deepEqual(problems({ restart: "unless_stopped" }), ['c: restart "unless_stopped" is not no, on-failure, always or unless-stopped']);
    assert.deepEqual(problems({ healthcheck: { tests: ["pg_isready"], interval: 5, timeout: "3 s", retries: -1, startPeriod: "90" } }), [
      "c: healthcheck.interval 5 is not a Go duration such as 5s or 1m30s",
      'c: healthcheck.timeout "3 s" is not a Go duration such as 5s or 1m30s',
      'c: healthcheck.startPeriod "90" is not a Go duration such as 5s or 1m30s',
      "c: healthcheck.retries -1 is not a non-negative integer",
      'c: healthcheck.tests ["pg_isready"] does not start with CMD, CMD-SHELL or NONE',
    ]);
    assert.deepEqual(problems({ uploads: [{ file: "run/x", permissions: "rw-r-----" }] }), ['c: uploads[0].file "run/x" is not an absolute path', 'c: uploads[0].permissions "rw-r-----" is not an octal mode such as 0440']);
    assert.deepEqual(problems({ logOpts: { "max-file": 3 } }), ["c: logOpts.max-file 3 is not a string"]);
    assert.deepEqual(problems({ volumes: [{ volumeName: "v", hostPath: "/x", containerPath: "/y", readOnly: true }, { hostPath: "var/lib", containerPath: "data" }] }), [
      'c: volumes[0] {"volumeName":"v","hostPath":"/x","containerPath":"/y","readOnly":true} must name either a volume or a host path',
      'c: volumes[1].hostPath "var/lib" is not an absolute path',
      "c: volumes[1].readOnly undefined must be true for a host path",
      'c: volumes[1].containerPath "data" is not an absolute path',
    ]);
    assert.deepEqual(problems({ labels: [{ label: "shopfds-logs", value: true }] }), ['c: labels[0] {"label":"shopfds-logs","value":true} is not a label name and a string value']);
  });

  it("deploys through one explicit Docker provider on the configured engine (default: the local socket), never DOCKER_HOST's", () => {
    assert.deepEqual(h.ofType("pulumi:providers:docker").map((p) => [p.name, p.inputs.host]), [["shopfds-dev-docker", "unix:///var/run/docker.sock"]]);
    const elsewhere = h.resources.filter((r) => r.type.startsWith("docker:") && !/pulumi:providers:docker::shopfds-dev-docker::/.test(r.provider ?? ""));
    assert.deepEqual(elsewhere.map((r) => `${r.type} ${r.name}`), []);
  });

  it("uploads every secret file 0440 (root:root, as the provider writes it), readable by the container's user through the root group only; config files 0644, scripts 0755", () => {
    const passwords = h.generatedPasswords();
    let secrets = 0;
    for (const c of h.ofType("docker:index/container:Container")) {
      const uploads: { file: string; content: string; permissions: string }[] = c.inputs.uploads ?? [];
      // Secret files live under /run/secrets (SecretFile's convention); nothing else may hold a password.
      const secret = uploads.filter((u) => u.file.startsWith("/run/secrets/"));
      for (const u of secret) {
        secrets++;
        assert.equal(u.permissions, "0440", `${c.name} ${u.file}`);
        assert.deepEqual(c.inputs.groupAdds, ["0"], `${c.name} (${c.inputs.user}) reads ${u.file} through the root group`);
      }
      for (const u of uploads.filter((x) => !x.file.startsWith("/run/secrets/"))) {
        assert.ok(!passwords.some((p) => String(u.content).includes(p)), `${c.name} ${u.file}: a password in a plain upload`);
        assert.equal(u.permissions, u.file.endsWith(".sh") ? "0755" : "0644", `${c.name} ${u.file}`);
      }
      if (secret.length === 0) assert.equal(c.inputs.groupAdds, undefined, `${c.name} has no secret file, so no extra group`);
    }
    assert.ok(secrets >= 10, `secret uploads checked: ${secrets}`);
  });

  it("pulls every image at an exact version, except the service image (built from the checkout in dev; the deploy job pins its commit elsewhere)", () => {
    const refs = h.ofType("docker:index/remoteImage:RemoteImage").map((i) => i.inputs.name as string);
    // PostgreSQL numbers its releases major.minor (15.8 is exact); everything else here major.minor.patch.
    const exact = (r: string) => /:v?\d+\.\d+\.\d+([-.][A-Za-z0-9.-]+)?$|@sha256:[0-9a-f]{64}$/.test(r) || /^postgres:\d+\.\d+-/.test(r);
    const floating = refs.filter((r) => !exact(r) && !/^(ghcr\.io\/shopfds\/)?shopfds-service:/.test(r));
    assert.deepEqual(floating, ["axllent/mailpit:v1.21"], "the one left floating: Mailpit (a dev sink; its patch tags were not verified offline)");
    // make setup pre-pulls images where a Docker engine runs: the same pins, never older ones.
    const prePulled = /for image in ([^;]+); do/.exec(readFileSync(path.resolve(__dirname, "../../scripts/setup.sh"), "utf8"))![1]!.trim().split(/\s+/);
    assert.deepEqual(prePulled.filter((i) => !refs.includes(i)), [], "every image setup.sh pulls is one the dev program runs");
  });

  it("converts CPU requests to Docker's decimal CPUs, twice the request", () => {
    assert.deepEqual(["50m", "100m", "250m", "1", "1.5", "333m"].map(dockerCpus), ["0.1", "0.2", "0.5", "2", "3", "0.666"]);
    assert.throws(() => dockerCpus("half"), { message: 'cpu quantity "half" is not a Kubernetes quantity such as 250m or 2' });
  });
});
