/**
 * Creates (or resets) an admin account of the reference service on the stack in use — how the first
 * admin of a deployed stack is made (`make dev` provisions the dev admin itself).
 *
 *   make admin EMAIL=ops@shop.example                   # generates a password and prints it once
 *   printf '%s' "$PASSWORD" | make admin EMAIL=…        # takes the password from stdin (≥ 12 characters)
 *
 * The password never comes from the command line or the environment (they end up in shell history and
 * process listings); it is stored only as its scrypt hash.
 */
import { randomBytes } from "node:crypto";
import { Database } from "@shopfds/runtime/db";
import { canonicalEmail } from "@shopfds/runtime/fds";
import { loadStackOutputs } from "@shopfds/runtime";
import { upsertAccount } from "../shop/accounts";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

async function main(): Promise<number> {
  const i = process.argv.indexOf("--email");
  const raw = i >= 0 ? process.argv[i + 1] : undefined;
  if (!raw) {
    console.error("usage: make admin EMAIL=ops@shop.example (password from stdin, or generated when stdin is a terminal)");
    return 2;
  }
  const email = canonicalEmail(raw, "EMAIL");
  const generated = process.stdin.isTTY;
  const password = generated ? randomBytes(18).toString("base64url") : await readStdin();
  if (password.length < 12) {
    console.error(`password: must be at least 12 characters (got ${password.length}); nothing was changed`);
    return 1;
  }
  const db = await Database.connect((await loadStackOutputs()).postgres);
  try {
    const account = await upsertAccount(db, { email, password, name: "Administrator", role: "admin" });
    console.log(`admin ${account.email} (user ${account.userId}) is ready`);
    if (generated) console.log(`password (shown once, store it in your password manager): ${password}`);
    return 0;
  } finally {
    await db.close();
  }
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`create-admin: ${e.message}`);
    process.exit(1);
  },
);
