/** Layer 1: Celery's canvas in a message's embed (runtime/jobs/canvas.ts): what a worker sends after a task, exactly. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chordUnlock, onFailure, onSuccess, signature, unsupportedCanvas } from "../../runtime/jobs/canvas";
import type { RecordedOutcome, TaskResults } from "../../runtime/jobs/results";
import { buildTaskMessage } from "../../runtime/jobs/protocol";

const finished = (embed: Record<string, unknown>) => ({ ...buildTaskMessage("t.a", [1], {}, { id: "a-id", rootId: "root-id", replyTo: "reply-q" }), embed: { callbacks: null, errbacks: null, chain: null, chord: null, ...embed } });
const bodyOf = (b: Buffer) => JSON.parse(b.toString("utf8")) as [unknown[], Record<string, unknown>, Record<string, unknown>];

describe("canvas", () => {
  it("after success: the next chain step (the last in the list) with the result first and the rest of the chain, then each link", () => {
    const c = signature("t.c", [100], {}, { queue: "q.c" });
    const b = signature("t.b", [10], { k: 1 }, { task_id: "b-id" });
    const sent = onSuccess(finished({ chain: [c, b], callbacks: [signature("t.link", [], {}, {}, true)] }), 3, { "t.b": "q.routed" }, "celery");
    assert.deepEqual(sent.map((f) => [f.task, f.queue, f.id === "b-id" || f.task !== "t.b"]), [["t.b", "q.routed", true], ["t.link", "celery", true]]);
    const [args, kwargs, embed] = bodyOf(sent[0]!.body);
    assert.deepEqual([args, kwargs, embed.chain], [[3, 10], { k: 1 }, [c]]);
    const headers = sent[0]!.options.headers as Record<string, unknown>;
    assert.deepEqual([headers.parent_id, headers.root_id, sent[0]!.options.replyTo], ["a-id", "root-id", "reply-q"]);
    assert.deepEqual(bodyOf(sent[1]!.body)[0], [], "immutable: nothing prepended");
  });

  it("after a failure for good: each errback with the task's id first; nothing after a plain success", () => {
    const sent = onFailure(finished({ errbacks: [signature("t.err", [], {}, { queue: "q.err" })] }));
    assert.deepEqual([sent[0]!.task, sent[0]!.queue, bodyOf(sent[0]!.body)[0]], ["t.err", "q.err", ["a-id"]]);
    assert.deepEqual(onSuccess(finished({}), 1), []);
  });

  it("refuses a chord without a result store, and malformed lists, naming them", () => {
    assert.match(unsupportedCanvas({ chord: { task: "t.x" } })!, /a chord .*no result store/);
    assert.equal(unsupportedCanvas({ chord: { task: "t.x" } }, true), undefined);
    assert.equal(unsupportedCanvas({ chord: "t.x" }, true), "embed.chord: must be a task signature");
    assert.equal(unsupportedCanvas({ chain: "nope" }), "embed.chain: must be a list of task signatures");
    assert.equal(unsupportedCanvas({ callbacks: [{ args: [] }] }), "embed.callbacks: must be a list of task signatures");
    assert.equal(unsupportedCanvas({ callbacks: null, errbacks: null, chain: null, chord: null }), undefined);
  });

  describe("celery.chord_unlock", () => {
    /** A result store of a map, as the worker's PostgresTaskResults answers. */
    const store = (outcomes: Record<string, RecordedOutcome>): TaskResults => ({ record: async () => undefined, lookup: async (ids) => new Map(ids.filter((id) => outcomes[id]).map((id) => [id, outcomes[id]!])) });
    const body = signature("t.sum", [7], {}, { queue: "q.body", task_id: "body-id", link_error: [signature("t.err", [], {}, { queue: "q.err" })] });
    const unlock = (kwargs: Record<string, unknown>, retries = 0, args: unknown[] = ["group-id", body]) => ({ ...buildTaskMessage("celery.chord_unlock", args, kwargs, { id: "unlock-id", retries }) });
    const header = { interval: null, max_retries: null, result: [[["h1", null], null], [["h2", null], null]] };
    const ok = (result: unknown): RecordedOutcome => ({ status: "SUCCESS", result });

    it("sends the body once every header task succeeded, their results in header order first", async () => {
      const next = await chordUnlock(unlock(header), store({ h2: ok(20), h1: ok(10) }));
      assert.equal(next.kind, "body");
      if (next.kind !== "body") return;
      assert.deepEqual([next.bodyId, next.followUp.queue, next.followUp.task, bodyOf(next.followUp.body)[0]], ["body-id", "q.body", "t.sum", [[10, 20], 7]]);
      assert.equal((next.followUp.options.headers as Record<string, unknown>).parent_id, "unlock-id");
    });

    it("waits its interval while a header task has not finished (or is being retried), and gives up after max_retries checks", async () => {
      assert.deepEqual(await chordUnlock(unlock(header), store({ h1: ok(1) })), { kind: "wait", intervalSeconds: 1 });
      assert.deepEqual(await chordUnlock(unlock({ ...header, interval: 0.25 }), store({ h1: ok(1), h2: { status: "RETRY", result: null } })), { kind: "wait", intervalSeconds: 0.25 });
      const late = await chordUnlock(unlock({ ...header, max_retries: 3 }, 3), store({ h1: ok(1) }));
      assert.equal(late.kind, "error");
      assert.match(late.kind === "error" ? late.reason : "", /did not finish within 3 checks/);
    });

    it("fails the chord when a header task failed, naming it and its exception, with the body's errbacks given the body's id", async () => {
      const next = await chordUnlock(unlock(header), store({ h1: ok(1), h2: { status: "FAILURE", result: { exc_type: "ValueError", exc_message: ["py_fail(5)"], exc_module: "builtins" } } }));
      assert.equal(next.kind, "error");
      if (next.kind !== "error") return;
      assert.equal(next.reason, "Dependency h2 raised ValueError('py_fail(5)')");
      assert.deepEqual([next.bodyId, next.followUps.map((f) => [f.task, f.queue, bodyOf(f.body)[0]])], ["body-id", [["t.err", "q.err", ["body-id"]]]]);
    });

    it("refuses what it does not run: a nested group in the header, a chain as the body, an unreadable result", async () => {
      const nested = await chordUnlock(unlock({ ...header, result: [[["g", null], [[["x", null], null]]]] }), store({}));
      assert.match(nested.kind === "error" ? nested.reason : "", /nested group is not run/);
      const chained = await chordUnlock(unlock(header, 0, ["group-id", { ...body, subtask_type: "chain" }]), store({}));
      assert.match(chained.kind === "error" ? chained.reason : "", /body is a chain/);
      const unreadable = await chordUnlock(unlock(header), store({ h1: ok(1), h2: { status: "SUCCESS", result: null, unreadable: "opcode 0x93" } }));
      assert.match(unreadable.kind === "error" ? unreadable.reason : "", /result of h2 cannot be read: opcode 0x93/);
    });
  });
});
