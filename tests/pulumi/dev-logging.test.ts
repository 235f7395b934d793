/**
 * Layer 2: the dev stack with `shopfds:logging.enabled` on (off by default): the ELK stack on Docker and
 * the log shipping that feeds it (FR-022, SC-006). Filebeat's Docker autodiscovery selects containers
 * by their labels; the test evaluates its rendered condition over every container the program declares,
 * so "which containers' lines reach Elasticsearch" is checked as an answer, not as a string.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parse } from "yaml";
import { LOGGING_PATHS, LOGSTASH_PORTS } from "../../components/logging/docker";
import { renderFilebeatDockerConfig } from "../../components/logging/render";
import { DOCKER_LABELS } from "../../components/platform/docker";
import { dockerInputProblems } from "./docker-inputs";
import { MockHarness, stackSettings } from "./harness";

const h = new MockHarness();
const CONTAINER = "docker:index/container:Container";
type Condition = { and?: Condition[]; or?: Condition[]; not?: Condition; equals?: Record<string, string> };

/** Filebeat's condition language, the parts the rendered config uses (and, or, not, equals). */
function matches(condition: Condition, fields: Record<string, string>): boolean {
  if (condition.and) return condition.and.every((c) => matches(c, fields));
  if (condition.or) return condition.or.some((c) => matches(c, fields));
  if (condition.not) return !matches(condition.not, fields);
  if (condition.equals) return Object.entries(condition.equals).every(([k, v]) => fields[k] === v);
  throw new Error(`condition not understood: ${JSON.stringify(condition)}`);
}

const labelsOf = (c: { inputs: Record<string, any> }): Record<string, string> =>
  Object.fromEntries((c.inputs.labels as { label: string; value: string }[]).map((l) => [`docker.container.labels.${l.label}`, l.value]));

before(async () => {
  const settings = stackSettings("dev");
  await h.runProgram("dev", { ...settings, "shopfds:logging": { enabled: true } }, {});
});

describe("dev stack with logging on: Filebeat ships the ShopFDS containers' lines to Logstash", () => {
  const filebeat = () => h.named(CONTAINER, "shopfds-dev-logging-filebeat-0");
  const config = () => parse(filebeat().inputs.uploads.find((u: { file: string }) => u.file === LOGGING_PATHS.filebeatConfig).content);

  it("every container, Filebeat's included, passes the provider's input forms", () => {
    assert.deepEqual(h.ofType(CONTAINER).flatMap((c) => dockerInputProblems(c.name, c.inputs)), []);
  });

  it("selects exactly the application containers of this stack: the service, workers, scheduler, Flower, brokers and databases; never the logging stack itself", () => {
    const provider = config()["filebeat.autodiscover"].providers[0];
    assert.equal(provider.type, "docker");
    assert.equal(provider.templates.length, 1);
    const shipped = h.ofType(CONTAINER).filter((c) => matches(provider.templates[0].condition, labelsOf(c))).map((c) => c.name);
    for (const app of ["shopfds-dev-service-0", "shopfds-dev-jobs-worker-0", "shopfds-dev-jobs-worker-1", "shopfds-dev-jobs-scheduler-0", "shopfds-dev-migrate", "shopfds-dev-pg-primary-0", "shopfds-dev-rabbitmq-broker-0"]) {
      assert.ok(shipped.includes(app), `${app} is shipped (shipped: ${shipped.join(", ")})`);
    }
    const skipped = h.ofType(CONTAINER).map((c) => c.name).filter((n) => !shipped.includes(n));
    assert.deepEqual(skipped.sort(), ["shopfds-dev-logging-es-0", "shopfds-dev-logging-filebeat-0", "shopfds-dev-logging-kibana-0", "shopfds-dev-logging-logstash-0"]);
    // Another stack's containers on the same engine are not this stack's business.
    assert.equal(matches(provider.templates[0].condition, { [`docker.container.labels.${DOCKER_LABELS.stack}`]: "shopfds-other", [`docker.container.labels.${DOCKER_LABELS.logs}`]: "ship" }), false);
  });

  it("reads each selected container's json-file log, takes Docker's envelope off, keeps the ECS fields, and sends to Logstash's Beats input", () => {
    const c = config();
    const input = c["filebeat.autodiscover"].providers[0].templates[0].config[0];
    assert.equal(input.type, "filestream");
    assert.deepEqual(input.paths, ["/var/lib/docker/containers/${data.docker.container.id}/${data.docker.container.id}-json.log"]);
    assert.deepEqual(input.parsers.map((p: object) => Object.keys(p)[0]), ["container", "ndjson"]);
    assert.equal(input.parsers[1].ndjson.target, "", "the ECS fields at the event's root, where the pipeline expects them");
    assert.deepEqual(c["output.logstash"].hosts, [`shopfds-dev-logging-logstash-0:${LOGSTASH_PORTS.beats}`]);
    const logstash = h.named(CONTAINER, "shopfds-dev-logging-logstash-0");
    const pipeline = logstash.inputs.uploads.find((u: { file: string }) => u.file === LOGGING_PATHS.pipeline).content as string;
    assert.match(pipeline, new RegExp(`beats \\{ port => ${LOGSTASH_PORTS.beats} \\}`));
  });

  it("runs as root with the engine's logs and socket mounted read-only, its read positions on a volume, after Logstash", () => {
    const fb = filebeat();
    assert.equal(fb.inputs.user, "0:0");
    assert.deepEqual(
      fb.inputs.volumes.filter((v: { hostPath?: string }) => v.hostPath).map((v: { hostPath: string; containerPath: string; readOnly: boolean }) => [v.hostPath, v.containerPath, v.readOnly]),
      [
        ["/var/lib/docker/containers", "/var/lib/docker/containers", true],
        ["/var/run/docker.sock", "/var/run/docker.sock", true],
      ],
    );
    assert.ok(fb.inputs.volumes.some((v: { volumeName?: string; containerPath: string }) => v.volumeName && v.containerPath === "/usr/share/filebeat/data"));
    assert.ok(h.dependsOn(fb, CONTAINER, "shopfds-dev-logging-logstash-0"));
    assert.equal(fb.inputs.image, "sha256:mock-docker.elastic.co/beats/filebeat:7.17.18", "the same release as Elasticsearch");
  });

  it("the renderer refuses bad input, naming the field", () => {
    const good = { stack: "shopfds-dev", logstash: "ls:5045", containersDir: "/var/lib/docker/containers", dockerSocket: "/var/run/docker.sock", httpPort: 5066, labels: DOCKER_LABELS };
    assert.doesNotThrow(() => renderFilebeatDockerConfig(good));
    assert.throws(() => renderFilebeatDockerConfig({ ...good, logstash: "ls" }), /logstash.*must be host:port/);
    assert.throws(() => renderFilebeatDockerConfig({ ...good, labels: { stack: "shopfds.stack", logs: "shopfds-logs" } }), /labels\.stack.*without dots/);
    assert.throws(() => renderFilebeatDockerConfig({ ...good, containersDir: "var/lib" }), /containersDir.*absolute path/);
  });
});
