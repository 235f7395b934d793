/**
 * The bench's profile summary (scripts/bench/profile.ts) on a made-up V8 profile: a pause of a stopped
 * process (the "worker away" run's SIGSTOP) is reported as stopped, not charged to the stack sampled
 * after SIGCONT (it once made `Transform._read` look like 30 % of the worker); strace -c's table read
 * into system calls per request.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inclusiveTime, selfTime, STOPPED_GAP_MS } from "../../scripts/bench/profile";
import { parseStraceSummary, perRequest } from "../../scripts/bench/syscalls";

const frame = (id: number, functionName: string, url: string, children: number[] = []) => ({ id, callFrame: { functionName, url, lineNumber: 0 }, children });
// root → handler (service) → write (native); root → (idle)
const profile = {
  nodes: [frame(1, "(root)", "", [2, 4]), frame(2, "handler", "file:///p/service/dist/tasks.js", [3]), frame(3, "writev", ""), frame(4, "(idle)", "")],
  samples: [3, 2, 4, 3, 2],
  // µs: 1 ms, 2 ms, 5 ms idle, a 10 s pause charged to `writev`, 1 ms
  timeDeltas: [1000, 2000, 5000, 10_000_000, 1000],
};

describe("bench profile summary", () => {
  it("counts a stopped process's pause apart, in self and in inclusive time", () => {
    const self = selfTime(profile, (n) => n.callFrame.functionName);
    assert.deepEqual(Object.fromEntries(self), { "(stopped)": 10_000, "(idle)": 5, handler: 3, writev: 1 });
    const inclusive = inclusiveTime(profile, (n) => (n.callFrame.functionName === "handler" ? "service" : undefined));
    assert.deepEqual(Object.fromEntries(inclusive), { service: 4 }, "the handler's 3 ms and the 1 ms write under it; the pause not");
  });

  it("a gap within the bound is time the process ran", () => {
    const gap = { ...profile, timeDeltas: [1000, 2000, 5000, STOPPED_GAP_MS * 1000, 1000] };
    assert.equal(selfTime(gap, (n) => n.callFrame.functionName).get("writev"), 1 + STOPPED_GAP_MS);
  });
});

describe("bench system call counts", () => {
  // strace -c's summary as strace 6.1 (Debian 12) writes it, an error column filled on one row.
  const summary = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ------------------
 41.10    0.019429         340      5700         2 writev
 19.08    0.004838        1209      4000           epoll_wait
  8.83    0.000211           4      9100       300 read
  0.04    0.000009           3      2400           write
  0.01    0.000001           1        10           sendmsg
------ ----------- ----------- --------- --------- ------------------
100.00    0.025358          37     21210       302 total
`;
  it("reads the calls of each kind from strace -c's table, not its total", () => {
    const calls = parseStraceSummary(summary);
    assert.deepEqual(Object.fromEntries(calls), { writev: 5700, epoll_wait: 4000, read: 9100, write: 2400, sendmsg: 10 });
    assert.deepEqual(perRequest(calls, 1000), { writes: 8.11, reads: 9.1, "event-loop waits": 4, all: 21.21 });
  });
});
