/** @shopfds/runtime/fds: the blacklist (Redis, written through to PostgreSQL), canonical values and the rules. */
export { Blacklist, ENTRY_KINDS, MAX_IMPORT_LINES, purgeExpiredEntries, BlacklistEntryNotFoundError, BlacklistInputError, BlacklistNotStoredError, BlacklistUnavailableError, BlacklistWriteError } from "./blacklist";
export type { AddInput, BlacklistEntry, BlacklistEvent, BlacklistOptions, BlacklistStats, ChangeBy, CheckInput, CheckResult, EntryKind, ImportLineError, ImportOptions, ImportReport } from "./blacklist";
export { BULK_COLUMNS, BULK_FORMATS } from "./bulk";
export type { BulkFormat } from "./bulk";
export { BLACKLIST_TYPES, canonicalEmail, canonicalIp, cardDigits, cardHash, InvalidValueError, luhnValid } from "./canonical";
export type { BlacklistType, CardHashKey } from "./canonical";
export { amountRule, blacklistRule, combineFactors, decisionFor, FDS_RULE_DEFAULTS, FraudDetector, levelFor, velocityRule } from "./evaluate";
export type { Decision, Evaluation, FdsRulesOptions, RiskFactor, RiskLevel, Transaction } from "./evaluate";
