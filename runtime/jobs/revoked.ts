/**
 * Revoked task ids, as Celery keeps them (worker/state.py: a LimitedSet of up to 50000 ids, each kept
 * 10800 s): a revoked task that arrives later, or whose eta comes, is acknowledged and reported revoked
 * instead of run.
 */
export const REVOKES_MAX = 50_000;
export const REVOKE_EXPIRES_MS = 10_800_000;

export class RevokedIds {
  private readonly ids = new Map<string, number>();

  constructor(
    private readonly max = REVOKES_MAX,
    private readonly keepMs = REVOKE_EXPIRES_MS,
    private readonly now: () => number = Date.now,
  ) {}

  add(id: string): void {
    this.ids.delete(id); // re-insert at the end: the oldest is evicted first
    this.ids.set(id, this.now() + this.keepMs);
    this.purge();
    while (this.ids.size > this.max) this.ids.delete(this.ids.keys().next().value as string);
  }

  has(id: string): boolean {
    const until = this.ids.get(id);
    return until !== undefined && until > this.now();
  }

  list(): string[] {
    this.purge();
    return [...this.ids.keys()];
  }

  private purge(): void {
    const now = this.now();
    for (const [id, until] of this.ids) {
      if (until > now) break; // insertion order is expiry order
      this.ids.delete(id);
    }
  }
}
