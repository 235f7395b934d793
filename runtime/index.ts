/** The ShopFDS runtime library: what services import to use the infrastructure the stack deploys. */
export * from "./outputs";
export { Database, isConnectionError } from "./db/router";
export type { DatabaseStats, QueryOptions, ReplicaStats, Target } from "./db/router";
export { DatabaseOptionsError, DEFAULT_OPTIONS as DATABASE_DEFAULTS } from "./db/options";
export type { DatabaseOptions } from "./db/options";
export { isReadOnlyStatement } from "./db/classify";
