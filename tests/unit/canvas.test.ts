/** Layer 1: Celery's canvas in a message's embed (runtime/jobs/canvas.ts): what a worker sends after a task, exactly. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { onFailure, onSuccess, signature, unsupportedCanvas } from "../../runtime/jobs/canvas";
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

  it("refuses a chord and malformed lists, naming them", () => {
    assert.match(unsupportedCanvas({ chord: { task: "t.x" } })!, /a chord/);
    assert.equal(unsupportedCanvas({ chain: "nope" }), "embed.chain: must be a list of task signatures");
    assert.equal(unsupportedCanvas({ callbacks: [{ args: [] }] }), "embed.callbacks: must be a list of task signatures");
    assert.equal(unsupportedCanvas({ callbacks: null, errbacks: null, chain: null, chord: null }), undefined);
  });
});
