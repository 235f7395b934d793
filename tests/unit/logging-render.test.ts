/**
 * Layer 1: the ELK renderers, structurally (Elasticsearch, Logstash and Kibana cannot run on the build
 * machines): the pipeline indexes ECS lines per service and day, the ILM policy deletes after 30 days
 * and the template applies it, the dashboard has the four FR-023 panels, the setup script is valid sh.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { ilmPolicy, ILM_POLICY, indexTemplate, renderKibanaSavedObjects, renderLoggingSetupScript, renderLogstashPipeline } from "../../components/logging/render";
import { InvalidSettingsError } from "../../components/validation";

describe("Logstash pipeline", () => {
  const pipeline = renderLogstashPipeline({ elasticsearchUrl: "http://es:9200", tcpPort: 5044, httpPort: 8080 });

  it("accepts JSON lines over TCP and JSON over HTTP", () => {
    assert.match(pipeline, /tcp \{ port => 5044 codec => json_lines \}/);
    assert.match(pipeline, /http \{ port => 8080 codec => json \}/);
  });

  it("turns the logger's dotted ECS keys into objects and indexes per service and day", () => {
    assert.match(pipeline, /de_dot \{ nested => true \}/);
    assert.match(pipeline, /index => "shopfds-logs-%\{\[service\]\[name\]\}-%\{\+YYYY\.MM\.dd\}"/);
    assert.match(pipeline, /password => "\$\{LOGSTASH_WRITER_PASSWORD\}"/, "the password comes from the environment set from a secret file");
    assert.doesNotMatch(pipeline, /password => "[^$]/);
  });

  it("balances its braces (Logstash refuses a pipeline that does not)", () => {
    const code = pipeline.replace(/"[^"]*"/g, '""').replace(/#.*$/gm, "");
    assert.equal((code.match(/\{/g) ?? []).length, (code.match(/\}/g) ?? []).length);
  });

  it("names bad settings", () => {
    assert.throws(() => renderLogstashPipeline({ elasticsearchUrl: "es", tcpPort: 5044, httpPort: 5044 }), (e: Error) => e instanceof InvalidSettingsError && /elasticsearchUrl: must be http\(s\):\/\/host:port/.test(e.message) && /httpPort: must be a port other than tcpPort/.test(e.message));
  });
});

describe("retention and mappings", () => {
  it("deletes indices 30 days old (FR-028), through the template on every shopfds-logs index", () => {
    assert.deepEqual((ilmPolicy() as { policy: { phases: { delete: unknown } } }).policy.phases.delete, { min_age: "30d", actions: { delete: {} } });
    const t = indexTemplate() as { index_patterns: string[]; template: { settings: Record<string, unknown>; mappings: { properties: Record<string, any> } } };
    assert.deepEqual(t.index_patterns, ["shopfds-logs-*"]);
    assert.equal(t.template.settings["index.lifecycle.name"], ILM_POLICY);
    assert.equal(t.template.mappings.properties["@timestamp"].type, "date");
    assert.equal(t.template.mappings.properties.service.properties.name.type, "keyword");
    assert.equal(t.template.mappings.properties.trace.properties.id.type, "keyword");
  });
});

describe("Kibana saved objects", () => {
  const objects = renderKibanaSavedObjects().trim().split("\n").map((l) => JSON.parse(l));

  it("hold the index pattern, the four FR-023 visualizations and a dashboard that references each", () => {
    assert.deepEqual(objects.map((o) => o.type), ["index-pattern", "visualization", "visualization", "visualization", "visualization", "dashboard"]);
    const titles = objects.filter((o) => o.type === "visualization").map((o) => o.attributes.title);
    for (const word of ["Error rate", "response time", "Traffic", "FDS block rate"]) assert.ok(titles.some((t: string) => t.includes(word)), word);
    const dashboard = objects.at(-1);
    const panels = JSON.parse(dashboard.attributes.panelsJSON);
    assert.equal(panels.length, 4);
    for (const p of panels) assert.ok(dashboard.references.some((r: { name: string; id: string }) => r.name === p.panelRefName && objects.some((o) => o.id === r.id)), p.panelRefName);
    for (const v of objects.filter((o) => o.type === "visualization")) {
      assert.equal(v.references[0].id, "shopfds-logs", "each visualization reads the shopfds-logs index pattern");
      JSON.parse(v.attributes.visState);
    }
  });
});

describe("logging setup script", () => {
  const script = renderLoggingSetupScript({
    elasticsearchUrl: "http://es:9200",
    kibanaUrl: "http://kibana:5601",
    elasticPasswordFile: "/run/secrets/elastic-password",
    kibanaPasswordFile: "/run/secrets/kibana-system-password",
    writerPasswordFile: "/run/secrets/logstash-writer-password",
    assetsDir: "/etc/shopfds-logging",
  });

  it("is valid sh that applies the policy, template, role, user and dashboard idempotently", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "logging-setup-"));
    try {
      writeFileSync(path.join(dir, "setup.sh"), script);
      execFileSync("sh", ["-n", path.join(dir, "setup.sh")]);
    } finally {
      rmSync(dir, { recursive: true });
    }
    for (const call of ["PUT /_ilm/policy/shopfds-logs-30d", "PUT /_index_template/shopfds-logs", "PUT /_security/role/shopfds_logs_writer", "PUT /_security/user/logstash_writer", "_import?overwrite=true"]) assert.ok(script.includes(call), call);
    assert.doesNotMatch(script, /-u elastic:[^$"]/, "passwords are read from files at run time");
  });
});
