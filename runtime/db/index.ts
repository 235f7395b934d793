/**
 * @shopfds/runtime/db: read/write routing over the PostgreSQL pair, and the runtime's own schema.
 */
export { Database, isConnectionError, parseWriteLocation } from "./router";
export type { DatabaseStats, QueryOptions, ReplicaStats, SessionHandle, SessionOptions, Target } from "./router";
export { DatabaseOptionsError, DEFAULT_OPTIONS as DATABASE_DEFAULTS } from "./options";
export type { DatabaseOptions } from "./options";
export { isReadOnlyStatement } from "./classify";
export type { ClassifyOptions } from "./classify";
export { pgSsl } from "./tls";
export type { PostgresTls } from "./tls";
export { appliedMigrations, migrate, RUNTIME_MIGRATIONS_TABLE, RUNTIME_TABLES, runtimeMigrationNames } from "./migrate";
export type { MigrationDatabase, RuntimeMigrateOptions } from "./migrate";
