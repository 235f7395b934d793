/**
 * Layer 2: the ELK stack in the prod stack stands on ECK: Elasticsearch (3 nodes, security and TLS by
 * ECK, Logstash's writer through ECK's file realm), Kibana, Logstash with the rendered pipeline, and the
 * log shipping nothing did before (FR-022): a Filebeat Beat reading the stack namespace's container logs,
 * parsing the ECS lines and sending them to Logstash's Beats input, whose pipeline writes the indices the
 * dashboards and the ILM policy cover. Every custom resource is judged against ECK's CRDs.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parse } from "yaml";
import { BEATS_PORT, ELASTIC_VERSION } from "../../components/logging/kubernetes";
import { OPERATORS } from "../../components/platform/operators";
import { ilmPolicy, indexTemplate, LOG_INDEX_PREFIX, renderKibanaSavedObjects, renderLogstashPipeline, writerRole } from "../../components/logging/render";
import { fileKey } from "../../components/platform/kubernetes";
import { validateCustomResource } from "./crd-schema";
import { MockHarness, plainStrings, resolve } from "./harness";
import { restrictedProblems } from "./pod-audit";

const h = new MockHarness();
let program: typeof import("../../index");
const NS = "shopfds-prod";
const L = "shopfds-prod-logging";
const named = (group: string, kind: string, name: string) => h.named(`kubernetes:${group}:${kind}`, name).inputs;

before(async () => {
  program = await h.runProgram("prod");
});

describe("prod stack: logging on ECK", () => {
  it("installs ECK from its chart at the pinned version", () => {
    const r = h.named("kubernetes:helm.sh/v3:Release", "shopfds-prod-operators-eck-operator").inputs;
    assert.deepEqual([r.chart, r.version, r.namespace, r.repositoryOpts.repo], ["eck-operator", OPERATORS.eck.version, "elastic-system", "https://helm.elastic.co"]);
  });

  it("declares Elasticsearch (3 nodes, required anti-affinity, claims), Kibana and Logstash, each valid against ECK's CRD", () => {
    const es = named("elasticsearch.k8s.elastic.co/v1", "Elasticsearch", L);
    const kb = named("kibana.k8s.elastic.co/v1", "Kibana", L);
    const ls = named("logstash.k8s.elastic.co/v1alpha1", "Logstash", L);
    assert.deepEqual(validateCustomResource("elasticsearch.k8s.elastic.co/v1", "Elasticsearch", es), []);
    assert.deepEqual(validateCustomResource("kibana.k8s.elastic.co/v1", "Kibana", kb), []);
    assert.deepEqual(validateCustomResource("logstash.k8s.elastic.co/v1alpha1", "Logstash", ls), []);
    assert.equal(es.spec.version, ELASTIC_VERSION);
    const nodeSet = es.spec.nodeSets[0];
    assert.equal(nodeSet.count, 3);
    assert.equal(nodeSet.config["node.store.allow_mmap"], false);
    assert.equal(nodeSet.volumeClaimTemplates[0].spec.resources.requests.storage, "200Gi");
    assert.equal(nodeSet.podTemplate.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey, "kubernetes.io/hostname");
    assert.deepEqual(nodeSet.podTemplate.spec.containers[0].resources, { requests: { cpu: "1", memory: "4Gi" }, limits: { memory: "4Gi" } });
    assert.deepEqual(kb.spec.elasticsearchRef, { name: L });
  });

  it("gives Logstash its writer user through ECK's file realm (password in a Secret) and the writer role", async () => {
    const es = named("elasticsearch.k8s.elastic.co/v1", "Elasticsearch", L);
    assert.deepEqual(es.spec.auth, { fileRealm: [{ secretName: `${L}-writer-user` }], roles: [{ secretName: `${L}-writer-role` }] });
    const user = h.named("kubernetes:core/v1:Secret", `${L}-writer-user`);
    assert.equal(user.inputs.type, "kubernetes.io/basic-auth");
    assert.deepEqual([user.inputs.stringData.username, user.inputs.stringData.roles], ["logstash_writer", "shopfds_logs_writer"]);
    assert.deepEqual(plainStrings(user.rawInputs.stringData.password), []);
    assert.deepEqual(parse(h.named("kubernetes:core/v1:Secret", `${L}-writer-role`).inputs.stringData["roles.yml"]), { shopfds_logs_writer: writerRole() });
    const container = named("logstash.k8s.elastic.co/v1alpha1", "Logstash", L).spec.podTemplate.spec.containers[0];
    assert.deepEqual(container.env, [
      { name: "LOGSTASH_WRITER_PASSWORD", valueFrom: { secretKeyRef: { name: `${L}-writer-user`, key: "password" } } },
      // The image's jvm.options fix a 1g heap (tests/fixtures/upstream): half of the pod's 2Gi instead.
      { name: "LS_JAVA_OPTS", value: "-Xms1024m -Xmx1024m" },
    ]);
    assert.deepEqual(h.leaks(), []);
    assert.equal((await resolve(program.logging!.kibanaUrl)).value, `https://${L}-kb-http.${NS}.svc:5601/`);
  });

  it("runs the rendered pipeline: a Beats input, ECS lines into the shopfds-logs indices over TLS with ECK's CA", () => {
    const ls = named("logstash.k8s.elastic.co/v1alpha1", "Logstash", L);
    const pipeline = ls.spec.pipelines[0]["config.string"];
    assert.equal(
      pipeline,
      renderLogstashPipeline({ elasticsearchUrl: `https://${L}-es-http.${NS}.svc:9200`, tcpPort: 5045, httpPort: 8080, beatsPort: BEATS_PORT, elasticsearchCaFile: "/usr/share/logstash/config/es-ca/ca.crt" }),
    );
    assert.match(pipeline, /beats \{ port => 5044 \}/);
    assert.match(pipeline, new RegExp(`index => "${LOG_INDEX_PREFIX}-%\\{\\[service\\]\\[name\\]\\}-%\\{\\+YYYY\\.MM\\.dd\\}"`));
    assert.match(pipeline, /ssl_certificate_authorities => \["\/usr\/share\/logstash\/config\/es-ca\/ca\.crt"\]/);
    assert.deepEqual(ls.spec.podTemplate.spec.volumes, [{ name: "es-ca", secret: { secretName: `${L}-es-http-certs-public`, items: [{ key: "ca.crt", path: "ca.crt" }] } }]);
    assert.deepEqual(ls.spec.services[0].service.spec.ports.map((p: any) => [p.name, p.port]), [["beats", 5044], ["json-tcp", 5045]]);
  });

  it("ships every container log of the stack's namespace with a Filebeat DaemonSet to Logstash's Beats input, parsing ECS JSON", () => {
    const beat = named("beat.k8s.elastic.co/v1beta1", "Beat", `${L}-filebeat`);
    assert.deepEqual(validateCustomResource("beat.k8s.elastic.co/v1beta1", "Beat", beat), []);
    assert.deepEqual([beat.spec.type, beat.spec.version, beat.metadata.namespace], ["filebeat", ELASTIC_VERSION, `${NS}-log-shipping`]);
    assert.deepEqual(beat.spec.config["output.logstash"], { hosts: [`${L}-ls-beats.${NS}.svc:${BEATS_PORT}`] });
    const provider = beat.spec.config["filebeat.autodiscover"].providers[0];
    assert.deepEqual(provider.templates[0].condition, { equals: { "kubernetes.namespace": NS } });
    const input = provider.templates[0].config[0];
    assert.deepEqual(input.paths, ["/var/log/containers/*-${data.kubernetes.container.id}.log"]);
    assert.deepEqual(input.parsers[1].ndjson.target, "", "the ECS fields become the event's own");
    // The Beats input the Beat sends to exists on the Service ECK makes for Logstash.
    const [host, port] = beat.spec.config["output.logstash"].hosts[0].split(":");
    const ls = named("logstash.k8s.elastic.co/v1alpha1", "Logstash", L);
    assert.equal(host, `${ls.metadata.name}-ls-${ls.spec.services[0].name}.${NS}.svc`);
    assert.ok(ls.spec.services[0].service.spec.ports.some((p: any) => p.port === Number(port)));
    // Reading pods, namespaces and nodes for the kubernetes.* fields, nothing more.
    assert.deepEqual(h.named("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", `${L}-filebeat`).inputs.rules, [{ apiGroups: [""], resources: ["pods", "namespaces", "nodes"], verbs: ["get", "list", "watch"] }]);
  });

  it('is the one named exception to Pod Security "restricted": root and the node\'s log directories, in a privileged namespace of its own', () => {
    const beat = named("beat.k8s.elastic.co/v1beta1", "Beat", `${L}-filebeat`);
    assert.deepEqual(restrictedProblems({ owner: "Beat filebeat", spec: beat.spec.daemonSet.podTemplate.spec }), [
      // Filebeat must read /var/log/containers and /var/log/pods, which only root can on a node.
      "Beat filebeat: volume varlogcontainers of type hostPath is not allowed",
      "Beat filebeat: volume varlogpods of type hostPath is not allowed",
      "Beat filebeat: container filebeat: runAsNonRoot is not true",
      "Beat filebeat: container filebeat: runs as root (runAsUser 0)",
      "Beat filebeat: container filebeat: allowPrivilegeEscalation is not false",
      "Beat filebeat: container filebeat: capabilities do not drop ALL",
      "Beat filebeat: container filebeat: no seccomp profile (RuntimeDefault)",
    ]);
    assert.equal(h.named("kubernetes:core/v1:Namespace", `${NS}-log-shipping`).inputs.metadata.labels["pod-security.kubernetes.io/enforce"], "privileged");
    assert.equal(h.named("kubernetes:core/v1:Namespace", NS).inputs.metadata.labels["pod-security.kubernetes.io/warn"], "restricted");
  });

  it("applies the ILM policy, index template and saved objects with ECK's elastic credentials and CAs", () => {
    const job = named("batch/v1", "Job", `${L}-setup`).spec.template.spec;
    assert.deepEqual(
      job.volumes.filter((v: any) => v.name.startsWith("existing-secret")).map((v: any) => [v.secret.secretName, v.secret.items.map((i: any) => i.key)]),
      [[`${L}-es-elastic-user`, ["elastic"]], [`${L}-es-http-certs-public`, ["ca.crt"]], [`${L}-kb-http-certs-public`, ["ca.crt"]]],
    );
    const data = h.named("kubernetes:core/v1:ConfigMap", `${L}-setup-config`).inputs.data;
    assert.equal(data[fileKey("/etc/shopfds-logging/ilm-policy.json")], JSON.stringify(ilmPolicy()));
    assert.equal(data[fileKey("/etc/shopfds-logging/index-template.json")], JSON.stringify(indexTemplate()));
    assert.equal(data[fileKey("/etc/shopfds-logging/saved-objects.ndjson")], renderKibanaSavedObjects());
    const script = data[fileKey("/etc/shopfds-logging/setup.sh")];
    assert.match(script, /--cacert '\/run\/secrets\/es-ca\/ca\.crt'/);
    assert.doesNotMatch(script, /kibana_system/, "ECK manages Kibana's own user");
  });
});
