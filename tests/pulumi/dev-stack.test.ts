/** The dev stack (Pulumi.dev.yaml) under mocks: the Docker backend's resources for the PostgreSQL pair. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { MockHarness, plainStrings, resolve } from "./harness";

const h = new MockHarness();
let program: typeof import("../../index");

before(async () => {
  await h.install("dev");
  program = await import("../../index");
  await resolve(program.postgres.password);
  await h.settle();
});

describe("dev stack on Docker", () => {
  it("declares exactly one network, two containers, two volumes and three passwords", () => {
    const counts = Object.fromEntries(["docker:index/network:Network", "docker:index/container:Container", "docker:index/volume:Volume", "docker:index/remoteImage:RemoteImage", "random:index/randomPassword:RandomPassword"].map((t) => [t, h.ofType(t).length]));
    console.log(h.resources.map(r=>`${r.type} ${r.name}`).join("\n"));
    assert.deepEqual(counts, {
      "docker:index/network:Network": 1,
      "docker:index/container:Container": 2,
      "docker:index/volume:Volume": 2,
      "docker:index/remoteImage:RemoteImage": 1,
      "random:index/randomPassword:RandomPassword": 3,
    });
  });
});
