/** The ShopFDS runtime library: what services import to use the infrastructure the stack deploys. */
export * from "./outputs";
export { Database, isConnectionError } from "./db/router";
export type { DatabaseStats, QueryOptions, ReplicaStats, Target } from "./db/router";
export { DatabaseOptionsError, DEFAULT_OPTIONS as DATABASE_DEFAULTS } from "./db/options";
export type { DatabaseOptions } from "./db/options";
export { isReadOnlyStatement } from "./db/classify";
export { connectRedisCluster } from "./redis/client";
export type { RedisClientOptions } from "./redis/client";
export { SessionStore } from "./redis/sessions";
export type { Session, SessionStoreOptions } from "./redis/sessions";
export { Blacklist, BlacklistInputError, BlacklistUnavailableError, BlacklistWriteError } from "./fds/blacklist";
export type { AddInput, BlacklistEntry, BlacklistOptions, BlacklistStats, CheckInput, CheckResult } from "./fds/blacklist";
export { BLACKLIST_TYPES, canonicalEmail, canonicalIp, cardDigits, cardHash, InvalidValueError, luhnValid } from "./fds/canonical";
export type { BlacklistType, CardHashKey } from "./fds/canonical";
export { amountRule, blacklistRule, decisionFor, FraudDetector, levelFor, velocityRule } from "./fds/evaluate";
export type { Decision, Evaluation, FdsRulesOptions, RiskFactor, RiskLevel, Transaction } from "./fds/evaluate";
