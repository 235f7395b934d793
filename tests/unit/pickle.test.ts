/**
 * The plain-data pickle codec (runtime/jobs/pickle.ts) against Debian's real Python: what Python
 * pickles at every protocol Celery's database backend may use is read back as the same values, what
 * the runtime pickles Python loads as the same values, and a pickle naming a Python class is refused.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { pickle, PickleError, unpickle } from "../../runtime/jobs/pickle";
import { PYTHON } from "../support/celery";

/** Runs Python with `stdin` and returns its stdout. */
const py = (code: string, stdin?: Buffer): Buffer => execFileSync(PYTHON, ["-c", code], { input: stdin ?? Buffer.alloc(0), maxBuffer: 16 * 1024 * 1024 });

// Values in Python syntax, with what the runtime must read for each (a tuple is an array; ints past 2^53 are bigints).
const CASES: [string, unknown][] = [
  ["None", null],
  ["[True, False]", [true, false]],
  ["[0, 1, 255, 256, 65535, 65536, -1, -129, 2**31 - 1, -2**31, 2**31, -2**31 - 1, 2**53 - 1, -(2**53 - 1)]", [0, 1, 255, 256, 65535, 65536, -1, -129, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]],
  ["[2**53, 2**64, -2**70, 2**2100]", [2n ** 53n, 2n ** 64n, -(2n ** 70n), 2n ** 2100n]],
  ["[0.5, -1e300, 1/3]", [0.5, -1e300, 1 / 3]],
  ["['', 'é', '日本', '\\U0001F600', 'x' * 300, 'y' * 70000]", ["", "é", "日本", "\u{1F600}", "x".repeat(300), "y".repeat(70000)]],
  ["[(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)]", [[], [1], [1, 2], [1, 2, 3], [1, 2, 3, 4]]],
  ["{'exc_type': 'ValueError', 'exc_message': ('py_fail(5)',), 'exc_module': 'builtins'}", { exc_type: "ValueError", exc_message: ["py_fail(5)"], exc_module: "builtins" }],
  ["(lambda s: [s, s, {'a': s, 1: [s]}])(['shared'])", [["shared"], ["shared"], { a: ["shared"], "1": [["shared"]] }]],
  ["[[[[[]]]]]", [[[[[]]]]]],
  ["{}", {}],
];

describe("pickle codec against Python", () => {
  for (const protocol of [2, 3, 4, 5]) {
    it(`reads what Python pickles with protocol ${protocol}`, () => {
      for (const [expr, expected] of CASES) {
        const bytes = py(`import pickle, sys; sys.stdout.buffer.write(pickle.dumps(${expr}, ${protocol}))`);
        assert.deepEqual(unpickle(bytes), expected, `${expr} (protocol ${protocol})`);
      }
    });
  }

  it("writes what Python loads as the same values", () => {
    for (const [expr, value] of CASES) {
      const same = py(`import pickle, sys; v = pickle.loads(sys.stdin.buffer.read()); e = ${expr}\nnorm = lambda x: [norm(i) for i in x] if isinstance(x, (list, tuple)) else {str(k): norm(i) for k, i in x.items()} if isinstance(x, dict) else x\nprint(norm(v) == norm(e))`, pickle(value));
      assert.equal(same.toString().trim(), "True", expr);
    }
  });

  it("refuses a pickle that names a Python class, and says which opcode", () => {
    const datetime = py("import pickle, sys, datetime; sys.stdout.buffer.write(pickle.dumps(datetime.datetime(2026, 1, 1), 5))");
    assert.throws(() => unpickle(datetime), (e: Error) => e instanceof PickleError && /opcode 0x93 .* not plain data/.test(e.message));
    const reduce = py("import pickle, sys; sys.stdout.buffer.write(pickle.dumps({1, 2}, 2))");
    assert.throws(() => unpickle(reduce), PickleError);
    assert.throws(() => unpickle(Buffer.from([0x80, 2, 0x5d])), /truncated pickle/);
  });

  it("refuses to pickle what is not plain data, naming where it is", () => {
    assert.throws(() => pickle({ at: [1, new Date(0)] }), /result\.at\[1\]: Date cannot be pickled/);
    const cycle: unknown[] = [];
    cycle.push(cycle);
    assert.throws(() => pickle(cycle), /nested deeper than/);
  });
});
