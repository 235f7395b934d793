/** @shopfds/runtime/fds: the blacklist (Redis, written through to PostgreSQL), canonical values and the rules. */
export { Blacklist, purgeExpiredEntries, BlacklistEntryNotFoundError, BlacklistInputError, BlacklistNotStoredError, BlacklistUnavailableError, BlacklistWriteError } from "./blacklist";
export type { AddInput, BlacklistEntry, BlacklistEvent, BlacklistOptions, BlacklistStats, ChangeBy, CheckInput, CheckResult } from "./blacklist";
export { BLACKLIST_TYPES, canonicalEmail, canonicalIp, cardDigits, cardHash, InvalidValueError, luhnValid } from "./canonical";
export type { BlacklistType, CardHashKey } from "./canonical";
export { amountRule, blacklistRule, combineFactors, decisionFor, FDS_RULE_DEFAULTS, FraudDetector, levelFor, velocityRule } from "./evaluate";
export type { Decision, Evaluation, FdsRulesOptions, RiskFactor, RiskLevel, Transaction } from "./evaluate";
