/**
 * Python's pickle, for plain data only: what Celery's database result backend keeps in
 * `celery_taskmeta.result` (SQLAlchemy's PickleType: `pickle.dumps(value, HIGHEST_PROTOCOL)` of the
 * task's return value, or of the `{exc_type, exc_message, exc_module}` dict of its exception).
 *
 * Written by hand: no npm library writes pickles, and the one that reads them (pickleparser 0.2)
 * fails on integers wider than 64 bits, which Python results can hold. Both directions take only
 * None, bool, int, float, str, list, tuple (read as an array) and dict: the reader refuses every
 * opcode that names a Python class or calls one (GLOBAL, REDUCE, BUILD…), so unpickling never
 * builds an object from the data, and a result that is not plain data is an error naming the opcode.
 */

const MAX_DEPTH = 200;

export class PickleError extends Error {
  override readonly name = "PickleError";
}

/** `value` as a protocol-2 pickle (readable by every Python 3). Integers beyond 2^53 as bigint. */
export function pickle(value: unknown): Buffer {
  const out: Buffer[] = [Buffer.from([0x80, 2])];
  const op = (...bytes: number[]): void => void out.push(Buffer.from(bytes));
  const write = (v: unknown, path: string, depth: number): void => {
    if (depth > MAX_DEPTH) throw new PickleError(`${path}: nested deeper than ${MAX_DEPTH} (a cycle?)`);
    if (v === null || v === undefined) return op(0x4e); // NONE
    if (v === true) return op(0x88); // NEWTRUE
    if (v === false) return op(0x89); // NEWFALSE
    if (typeof v === "bigint" || (typeof v === "number" && Number.isSafeInteger(v))) return writeInt(BigInt(v));
    if (typeof v === "number") {
      const b = Buffer.alloc(9);
      b[0] = 0x47; // BINFLOAT, big-endian IEEE 754
      b.writeDoubleBE(v, 1);
      return void out.push(b);
    }
    if (typeof v === "string") {
      const s = Buffer.from(v, "utf8");
      const head = Buffer.alloc(5);
      head[0] = 0x58; // BINUNICODE
      head.writeUInt32LE(s.length, 1);
      return void out.push(head, s);
    }
    if (Array.isArray(v)) {
      op(0x5d); // EMPTY_LIST
      if (v.length === 0) return;
      op(0x28); // MARK
      v.forEach((item, i) => write(item, `${path}[${i}]`, depth + 1));
      return op(0x65); // APPENDS
    }
    if (typeof v === "object" && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
      const entries = Object.entries(v as Record<string, unknown>);
      op(0x7d); // EMPTY_DICT
      if (entries.length === 0) return;
      op(0x28); // MARK
      for (const [k, item] of entries) {
        write(k, path, depth + 1);
        write(item, `${path}.${k}`, depth + 1);
      }
      return op(0x75); // SETITEMS
    }
    throw new PickleError(`${path}: ${typeof v === "object" ? (v as object).constructor?.name ?? "object" : typeof v} cannot be pickled as plain data (only null, booleans, numbers, strings, arrays and plain objects)`);
  };
  const writeInt = (n: bigint): void => {
    if (n >= 0n && n < 256n) return op(0x4b, Number(n)); // BININT1
    if (n >= -(2n ** 31n) && n < 2n ** 31n) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a; // BININT, signed little-endian
      b.writeInt32LE(Number(n), 1);
      return void out.push(b);
    }
    // LONG1 (LONG4 past 255 bytes): the length, then the two's complement little-endian bytes.
    const bytes: number[] = [];
    let x = n;
    for (;;) {
      bytes.push(Number(x & 0xffn));
      x >>= 8n;
      const sign = bytes[bytes.length - 1]! & 0x80;
      if ((x === 0n && !sign) || (x === -1n && sign)) break;
    }
    if (bytes.length < 256) return op(0x8a, bytes.length, ...bytes);
    const head = Buffer.alloc(5);
    head[0] = 0x8b; // LONG4
    head.writeInt32LE(bytes.length, 1);
    out.push(head, Buffer.from(bytes));
  };
  write(value, "result", 0);
  op(0x2e); // STOP
  return Buffer.concat(out);
}

/** A pickle of plain data (protocols 2 to 5) as JSON-like values; a tuple becomes an array, an int beyond 2^53 a bigint. */
export function unpickle(data: Buffer): unknown {
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let at = 0;
  const need = (n: number) => {
    if (at + n > data.length) throw new PickleError(`truncated pickle: ${n} byte(s) needed at offset ${at}`);
    const start = at;
    at += n;
    return start;
  };
  const pop = () => {
    if (stack.length === 0) throw new PickleError(`stack empty at offset ${at}`);
    return stack.pop();
  };
  const popMark = () => {
    const mark = marks.pop();
    if (mark === undefined) throw new PickleError(`no MARK before offset ${at}`);
    return stack.splice(mark);
  };
  const top = <T>(check: (v: unknown) => v is T, what: string): T => {
    const v = stack[stack.length - 1];
    if (!check(v)) throw new PickleError(`expected a ${what} on the stack at offset ${at}`);
    return v;
  };
  const isList = (v: unknown): v is unknown[] => Array.isArray(v);
  const isDict = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
  const setItems = (dict: Record<string, unknown>, kv: unknown[]) => {
    for (let i = 0; i + 1 < kv.length; i += 2) dict[String(kv[i])] = kv[i + 1];
  };
  const int = (v: bigint) => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
  const long = (n: number) => {
    const p = need(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[p + i]!);
    if (n > 0 && data[p + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    return int(v);
  };
  const text = (n: number) => data.toString("utf8", need(n), at);
  for (;;) {
    const code = data[need(1)]!;
    switch (code) {
      case 0x80: need(1); break; // PROTO
      case 0x95: need(8); break; // FRAME
      case 0x2e: { // STOP
        if (stack.length !== 1 || marks.length) throw new PickleError("malformed pickle: the stack does not hold one value at STOP");
        return stack[0];
      }
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(data[need(1)]); break; // BININT1
      case 0x4d: stack.push(data.readUInt16LE(need(2))); break; // BININT2
      case 0x4a: stack.push(data.readInt32LE(need(4))); break; // BININT
      case 0x8a: stack.push(long(data[need(1)]!)); break; // LONG1
      case 0x8b: stack.push(long(data.readInt32LE(need(4)))); break; // LONG4
      case 0x47: stack.push(data.readDoubleBE(need(8))); break; // BINFLOAT
      case 0x8c: stack.push(text(data[need(1)]!)); break; // SHORT_BINUNICODE
      case 0x58: stack.push(text(data.readUInt32LE(need(4)))); break; // BINUNICODE
      case 0x8d: stack.push(text(Number(data.readBigUInt64LE(need(8))))); break; // BINUNICODE8
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x7d: stack.push({}); break; // EMPTY_DICT
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x61: { const v = pop(); top(isList, "list").push(v); break; } // APPEND
      case 0x65: { const items = popMark(); top(isList, "list").push(...items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItems(top(isDict, "dict"), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(isDict, "dict"), kv); break; } // SETITEMS
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x94: memo.set(memo.size, stack[stack.length - 1]); break; // MEMOIZE
      case 0x71: memo.set(data[need(1)]!, stack[stack.length - 1]); break; // BINPUT
      case 0x72: memo.set(data.readUInt32LE(need(4)), stack[stack.length - 1]); break; // LONG_BINPUT
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const i = code === 0x68 ? data[need(1)]! : data.readUInt32LE(need(4));
        if (!memo.has(i)) throw new PickleError(`memo ${i} read before it was written`);
        stack.push(memo.get(i));
        break;
      }
      default:
        throw new PickleError(`opcode 0x${code.toString(16).padStart(2, "0")} at offset ${at - 1} is not plain data (a Python object, bytes or a set): only None, bool, int, float, str, list, tuple and dict results can be read`);
    }
  }
}
