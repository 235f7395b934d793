/**
 * The scheduler's ledger (`scheduler_runs`) was created here up to @shopfds/runtime 0.5. The runtime
 * now owns it (runtime/migrations/0002_scheduler, applied before these by service/bin/migrate.ts), so
 * this migration is kept, empty, for the databases that recorded it.
 */
export function up(): void {
  // The runtime's 0002_scheduler creates scheduler_runs.
}

export function down(): void {
  // The runtime's 0002_scheduler drops it.
}
