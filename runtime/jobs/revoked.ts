/**
 * Revoked task ids, as Celery keeps them (worker/state.py: a LimitedSet of up to 50000 ids, each kept
 * 10800 s): a revoked task that arrives later, or whose eta comes, is acknowledged and reported revoked
 * instead of run.
 */
export const REVOKES_MAX = 50_000;
export const REVOKE_EXPIRES_MS = 10_800_000;

export class RevokedIds {
  /** id → [inserted at (ms), kept until (ms)], in insertion order (which is expiry order). */
  private readonly ids = new Map<string, [number, number]>();

  constructor(
    private readonly max = REVOKES_MAX,
    private readonly keepMs = REVOKE_EXPIRES_MS,
    private readonly now: () => number = Date.now,
  ) {}

  add(id: string): void {
    this.ids.delete(id); // re-insert at the end: the oldest is evicted first
    const now = this.now();
    this.ids.set(id, [now, now + this.keepMs]);
    this.purge();
    while (this.ids.size > this.max) this.ids.delete(this.ids.keys().next().value as string);
  }

  has(id: string): boolean {
    const entry = this.ids.get(id);
    return entry !== undefined && entry[1] > this.now();
  }

  list(): string[] {
    this.purge();
    return [...this.ids.keys()];
  }

  /**
   * As a Celery worker answers mingle's `hello` (its LimitedSet's data): id → insertion time in seconds.
   * Celery refuses a timestamp that is not a float ("Expecting float timestamp") and JSON writes a whole
   * number without a fraction, so the time is taken half a millisecond in: never a whole second.
   */
  celeryData(): Record<string, number> {
    this.purge();
    return Object.fromEntries([...this.ids].map(([id, [inserted]]) => [id, (inserted + 0.5) / 1000]));
  }

  private purge(): void {
    const now = this.now();
    for (const [id, [, until]] of this.ids) {
      if (until > now) break; // insertion order is expiry order
      this.ids.delete(id);
    }
  }
}
