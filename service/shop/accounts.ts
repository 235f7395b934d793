/**
 * Accounts and login: passwords stored as scrypt hashes (node:crypto's scrypt, a memory-hard KDF, with a
 * random 16-byte salt and the cost parameters kept in the stored string so they can be raised later),
 * and `authenticate`, which answers in about the same time whether or not the account exists.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from "node:crypto";
import type { Database } from "@shopfds/runtime/db";
import { canonicalEmail } from "@shopfds/runtime/fds";

const COST = { N: 16384, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;

function scrypt(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, KEY_LENGTH, { ...options, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `scrypt$N$r$p$salt$hash` (base64url). */
export async function hashPassword(password: string): Promise<string> {
  if (password.length < 12) throw new RangeError("password: must be at least 12 characters");
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, COST);
  return `scrypt$${COST.N}$${COST.r}$${COST.p}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

/** Whether `password` matches a hash made by `hashPassword`; false for anything else (e.g. seed users' placeholder). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([\w-]+)\$([\w-]+)$/.exec(stored);
  if (!m) return false;
  const expected = Buffer.from(m[5]!, "base64url");
  const key = await scrypt(password, Buffer.from(m[4]!, "base64url"), { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

export type Role = "customer" | "admin";

export interface Account {
  readonly userId: number;
  readonly email: string;
  readonly role: Role;
}

// Compared against when the account does not exist, so a miss costs the same time as a wrong password.
let dummyHash: Promise<string> | undefined;

/** The account whose e-mail and password match (its last login recorded), or undefined. */
export async function authenticate(db: Database, email: string, password: string): Promise<Account | undefined> {
  const { rows } = await db.query<{ id: string; email: string; role: Role; password_hash: string }>(
    "SELECT id, email, role, password_hash FROM users WHERE email = $1",
    [canonicalEmail(email, "email")],
    { fresh: true }, // a password just changed must not be read from a lagging replica
  );
  const user = rows[0];
  const ok = await verifyPassword(password, user?.password_hash ?? (await (dummyHash ??= hashPassword(randomBytes(16).toString("hex")))));
  if (!user || !ok) return undefined;
  await db.query("UPDATE users SET last_login_at = now() WHERE id = $1", [user.id]);
  return { userId: Number(user.id), email: user.email, role: user.role };
}

/** Creates the account, or resets its password and role when the e-mail exists (used to provision the dev admin). */
export async function upsertAccount(db: Database, input: { email: string; password: string; name: string; role: Role }): Promise<Account> {
  const hash = await hashPassword(input.password);
  const { rows } = await db.query<{ id: string; email: string; role: Role }>(
    `INSERT INTO users (email, password_hash, name, role) VALUES ($1, $2, $3, $4)
     ON CONFLICT (email) DO UPDATE SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role, updated_at = now()
     RETURNING id, email, role`,
    [canonicalEmail(input.email, "email"), hash, input.name, input.role],
  );
  return { userId: Number(rows[0]!.id), email: rows[0]!.email, role: rows[0]!.role };
}
