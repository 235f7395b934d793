/**
 * Canonical forms of the values the FDS blacklists, so one entry matches every spelling of a value:
 * IPs (IPv4, IPv6 compressed and lower-cased, IPv4-mapped IPv6 as IPv4), e-mail addresses (trimmed,
 * lower-cased) and card numbers (digits only, Luhn-checked, then only ever kept as a keyed hash).
 */
import { createHmac } from "node:crypto";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";
import { z } from "zod";
import { InputError } from "../errors";

export const BLACKLIST_TYPES = ["ip", "email", "card"] as const;
export type BlacklistType = (typeof BLACKLIST_TYPES)[number];

/** A value the FDS cannot use; `field` names it, the message says what is wrong, never echoing a card. */
export class InvalidValueError extends InputError {
  constructor(
    field: string,
    readonly problem: string,
  ) {
    super(field, `${field}: ${problem}`);
  }
}

export function canonicalIp(value: unknown, field = "ip"): string {
  if (typeof value !== "string") throw new InvalidValueError(field, `must be a string (got ${typeof value})`);
  const trimmed = value.trim();
  // node:net is strict (no "127.1", no octal); zone ids name an interface, not an address.
  if (isIP(trimmed) === 0 || trimmed.includes("%")) throw new InvalidValueError(field, `must be an IPv4 or IPv6 address (got ${JSON.stringify(value.slice(0, 64))})`);
  return ipaddr.process(trimmed).toString();
}

const emailSchema = z.email();

export function canonicalEmail(value: unknown, field = "email"): string {
  if (typeof value !== "string") throw new InvalidValueError(field, `must be a string (got ${typeof value})`);
  const email = value.trim().toLowerCase();
  if (email.length > 254 || !emailSchema.safeParse(email).success) throw new InvalidValueError(field, `must be an e-mail address (got ${JSON.stringify(value.slice(0, 64))})`);
  return email;
}

/** Luhn's check digit test (ISO/IEC 7812-1). */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** The card number's digits (spaces and dashes allowed in input). Errors never include the number. */
export function cardDigits(value: unknown, field = "card"): string {
  if (typeof value !== "string") throw new InvalidValueError(field, `must be a string (got ${typeof value})`);
  const digits = value.replace(/[\s-]/g, "");
  if (!/^\d+$/.test(digits)) throw new InvalidValueError(field, "must contain only digits, spaces and dashes");
  if (digits.length < 12 || digits.length > 19) throw new InvalidValueError(field, `must have 12 to 19 digits (got ${digits.length})`);
  if (!luhnValid(digits)) throw new InvalidValueError(field, "fails the Luhn check (mistyped number?)");
  return digits;
}

export interface CardHashKey {
  readonly version: number;
  /** 256-bit key, hex. */
  readonly key: string;
}

/** HMAC-SHA-256 of the card's digits under one key version, hex (PCI DSS 3.5.1.1: a keyed hash). */
export function cardHash(digits: string, key: CardHashKey): string {
  return createHmac("sha256", Buffer.from(key.key, "hex")).update(digits).digest("hex");
}
