/**
 * The SMTP transport of the e-mail tasks, every network step bounded. nodemailer's defaults wait 2 min
 * for a connection, 30 s for the greeting and 10 min on a silent socket; a hung server would hold a
 * worker slot that long. Here:
 * - connect and greeting: 10 s each. Nothing has been sent yet, so a timeout there is safe to retry.
 * - socket: 60 s of silence mid-conversation. A timeout after the message's final "." is the one case
 *   where the server may have taken it without the client knowing (RFC 5321 §4.5.3.2.6 asks clients to
 *   wait 10 minutes for that reply for this reason): SMTP gives no way to ask, so the retry sends it
 *   again with the same Message-ID (`<order-N@shopfds>`), which receiving systems that deduplicate by
 *   it (Mailpit's --ignore-duplicate-ids, most mail clients' threading) show once.
 * The e-mail worker is the only one that waits on SMTP (service/bin/worker.ts): reports, the FDS batch
 * and the archive run on another worker whatever the mail server does.
 */
import nodemailer, { type Transporter } from "nodemailer";
import type { StackOutputs } from "@shopfds/runtime";

export const SMTP_TIMEOUTS_MS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 60_000 } as const;

/**
 * Pooled: up to `maxConnections` SMTP connections (one per concurrent e-mail task), each kept for up to
 * 100 messages, instead of a connection (TCP, greeting, EHLO, TLS, AUTH, QUIT) per e-mail; nodemailer
 * reconnects when the relay closes an idle one.
 */
export function mailTransport(smtp: NonNullable<StackOutputs["smtp"]>, maxConnections: number): Transporter {
  return nodemailer.createTransport({
    pool: true,
    maxConnections,
    maxMessages: 100,
    ...SMTP_TIMEOUTS_MS,
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password } } : {}),
  });
}
