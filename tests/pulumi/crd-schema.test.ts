/**
 * The custom-resource check itself: it must refuse what the API server refuses (an unknown field, a
 * wrong type, a missing required field, a value outside an enum) and accept Kubernetes' own extensions
 * (int-or-string quantities, fields an operator leaves open), or the prod tests' "no problems" means nothing.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OPERATORS } from "../../components/platform/operators";
import { loadCrds, validateCustomResource } from "./crd-schema";

const cluster = { metadata: { name: "pg" }, spec: { instances: 3, storage: { size: "1Gi" } } };

describe("custom resources against the operators' CRDs", () => {
  it("accepts a valid Cluster and refuses an unknown field and a wrong type, naming where", () => {
    assert.deepEqual(validateCustomResource("postgresql.cnpg.io/v1", "Cluster", cluster), []);
    const bad = { ...cluster, spec: { ...cluster.spec, instances: "3", storage: { size: "1Gi", storageClas: "fast" } } };
    assert.deepEqual(validateCustomResource("postgresql.cnpg.io/v1", "Cluster", bad), ["spec.instances: must be integer", 'spec.storage.storageClas: unknown field "storageClas"']);
  });

  it("refuses a missing required field and a value outside an enum", () => {
    assert.deepEqual(validateCustomResource("postgresql.cnpg.io/v1", "ScheduledBackup", { metadata: { name: "b" }, spec: { schedule: "0 0 3 * * *" } }), ["spec.cluster: Required value"]);
    assert.deepEqual(
      validateCustomResource("postgresql.cnpg.io/v1", "ScheduledBackup", { metadata: { name: "b" }, spec: { schedule: "0 0 3 * * *", cluster: { name: "pg" }, method: "pg_dump" } }),
      ['spec.method: must be one of "barmanObjectStore", "volumeSnapshot", "plugin"'],
    );
  });

  it("accepts int-or-string quantities and open-ended fields, and refuses a kind no vendored CRD defines", () => {
    assert.deepEqual(validateCustomResource("rabbitmq.com/v1beta1", "RabbitmqCluster", { metadata: { name: "r" }, spec: { replicas: 3, resources: { limits: { cpu: 1, memory: "2Gi" } } } }), []);
    assert.deepEqual(validateCustomResource("rabbitmq.com/v1beta1", "RabbitmqCluster", { metadata: { name: "r" }, spec: { resources: { limits: { cpu: [1] } } } }), [
      "spec.resources.limits.cpu: must be integer",
      "spec.resources.limits.cpu: must be string",
    ]);
    assert.deepEqual(validateCustomResource("postgresql.cnpg.io/v2", "Cluster", cluster), ["postgresql.cnpg.io/v2 Cluster: no CRD for this kind in tests/fixtures/crds"]);
  });

  it("validates against the CRDs of the operator versions the program installs", () => {
    const files = [...new Set([...loadCrds().values()].map((c) => c.file))].sort();
    const versionOf = (prefix: string) => [...new Set(files.filter((f) => f.startsWith(prefix)).map((f) => /-v(\d+\.\d+\.\d+)-/.exec(f)![1]))];
    assert.deepEqual(versionOf("cnpg-"), [OPERATORS.cnpg.appVersion]);
    assert.deepEqual(versionOf("eck-"), [OPERATORS.eck.appVersion]);
    assert.deepEqual(versionOf("prometheus-operator-"), [OPERATORS.prometheus.appVersion]);
    assert.deepEqual(versionOf("rabbitmq-cluster-operator-"), [OPERATORS.rabbitmq.appVersion]);
    assert.deepEqual(versionOf("cert-manager-").map((v) => `v${v}`), [OPERATORS.certManager.appVersion]);
    assert.match(OPERATORS.rabbitmq.manifest, new RegExp(`/v${OPERATORS.rabbitmq.appVersion.replaceAll(".", "\\.")}/`));
  });
});
