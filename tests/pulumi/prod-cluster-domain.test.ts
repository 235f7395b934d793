/**
 * A Kubernetes stack on a cluster whose DNS domain is not cluster.local (`shopfds:kubernetes.clusterDomain`):
 * every fully qualified name the program writes — the Redis nodes' addresses in the contract and in the
 * cluster-creation job, the replica discovery name, the certificates' names — carries that domain, and
 * none still says cluster.local (a pod there could not resolve it).
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { contractOutputs, MockHarness, stackSettings, TEST_SECRETS } from "./harness";

const h = new MockHarness();
let contract: Record<string, unknown>;

before(async () => {
  const settings = stackSettings("prod");
  const program = await h.runProgram("prod", { ...settings, "shopfds:kubernetes": { ...(settings["shopfds:kubernetes"] as object), clusterDomain: "corp.internal" } }, TEST_SECRETS.prod);
  contract = await contractOutputs(program);
});

describe("prod stack on a cluster domain of its own", () => {
  it("the contract's Redis nodes and replica discovery name carry the domain", () => {
    const text = JSON.stringify(contract);
    assert.match(text, /\.svc\.corp\.internal/);
    assert.doesNotMatch(text, /cluster\.local/);
  });

  it("no resource the program declares names cluster.local", () => {
    const naming = h.resources.filter((r) => JSON.stringify(r.inputs).includes("cluster.local")).map((r) => `${r.type} ${r.name}: ${/[^"]*cluster\.local[^"]*/.exec(JSON.stringify(r.inputs))?.[0]}`);
    assert.deepEqual(naming, []);
    assert.ok(h.resources.some((r) => JSON.stringify(r.inputs).includes(".svc.corp.internal")), "the domain is used");
  });
});
