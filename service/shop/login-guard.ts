/**
 * Brute-force protection for logins, on the Redis Cluster with rate-limiter-flexible (atomic counters
 * shared by every service instance):
 * - per account and client IP: after `perAccountAndIp.points` wrong passwords within its window, that
 *   pair is refused for `blockSeconds` (the account's owner elsewhere is not locked out);
 * - per client IP: after `perIp.points` wrong passwords within its window (password spraying across
 *   accounts), the IP is refused for `blockSeconds`.
 * A successful login clears the account-and-IP counter. Refusals say when to come back (Retry-After).
 */
import type { Cluster } from "ioredis";
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { withTimeout } from "@shopfds/runtime";

export interface LimitOptions {
  readonly points: number;
  readonly windowSeconds: number;
  readonly blockSeconds: number;
}

export interface LoginGuardOptions {
  /** @default 5 wrong passwords in 15 minutes → 15 minutes */
  readonly perAccountAndIp?: LimitOptions;
  /** @default 100 wrong passwords in 24 hours → 24 hours */
  readonly perIp?: LimitOptions;
  /** @default "login-guard" */
  readonly keyPrefix?: string;
  /** How long a check or count may take before the login fails as unavailable. @default 1000 */
  readonly timeoutMs?: number;
}

export class LoginGuard {
  private readonly pair: RateLimiterRedis;
  private readonly ip: RateLimiterRedis;
  private readonly pairPoints: number;
  private readonly ipPoints: number;
  private readonly timeoutMs: number;

  constructor(redis: Cluster, options: LoginGuardOptions = {}) {
    const pair = options.perAccountAndIp ?? { points: 5, windowSeconds: 15 * 60, blockSeconds: 15 * 60 };
    const ip = options.perIp ?? { points: 100, windowSeconds: 24 * 3600, blockSeconds: 24 * 3600 };
    for (const [name, l] of [["perAccountAndIp", pair], ["perIp", ip]] as const) {
      for (const k of ["points", "windowSeconds", "blockSeconds"] as const) {
        if (!Number.isInteger(l[k]) || l[k] < 1) throw new RangeError(`${name}.${k}: must be a positive integer (got ${l[k]})`);
      }
    }
    const prefix = options.keyPrefix ?? "login-guard";
    this.pair = new RateLimiterRedis({ storeClient: redis, keyPrefix: `${prefix}:pair`, points: pair.points, duration: pair.windowSeconds, blockDuration: pair.blockSeconds });
    this.ip = new RateLimiterRedis({ storeClient: redis, keyPrefix: `${prefix}:ip`, points: ip.points, duration: ip.windowSeconds, blockDuration: ip.blockSeconds });
    this.pairPoints = pair.points;
    this.ipPoints = ip.points;
    this.timeoutMs = options.timeoutMs ?? 1000;
  }

  /** Seconds until this e-mail may try again from this IP, or undefined when it may try now. */
  async retryAfterSeconds(email: string, ip: string): Promise<number | undefined> {
    const [pair, byIp] = await withTimeout(Promise.all([this.pair.get(pairKey(email, ip)), this.ip.get(ip)]), this.timeoutMs, "the login guard's check");
    const waits = [
      pair && pair.consumedPoints >= this.pairPoints ? pair.msBeforeNext : 0,
      byIp && byIp.consumedPoints >= this.ipPoints ? byIp.msBeforeNext : 0,
    ];
    const ms = Math.max(...waits);
    return ms > 0 ? Math.ceil(ms / 1000) : undefined;
  }

  /** Counts a wrong password. */
  async failed(email: string, ip: string): Promise<void> {
    // consume() rejects with a RateLimiterRes when the limit is reached (and starts the block): expected.
    const expected = (e: unknown) => {
      if (!(e instanceof RateLimiterRes)) throw e;
    };
    await withTimeout(Promise.all([this.pair.consume(pairKey(email, ip)).catch(expected), this.ip.consume(ip).catch(expected)]), this.timeoutMs, "the login guard's count");
  }

  /** Clears the account-and-IP counter after a successful login. */
  async succeeded(email: string, ip: string): Promise<void> {
    await withTimeout(this.pair.delete(pairKey(email, ip)), this.timeoutMs, "the login guard's reset");
  }
}

const pairKey = (email: string, ip: string) => `${email.trim().toLowerCase()}|${ip}`;
