/**
 * @shopfds/runtime: what services import to use the infrastructure the stack deploys. The root holds
 * every feature but the web-framework adapters; each feature is also its own entry point (README,
 * "Entry points"). Nothing else is public: files may move between versions.
 */
export * from "./outputs";
export * from "./errors";
export { RULES } from "./rules";
export type { ValueRule } from "./rules";
export { withTimeout } from "./timeout";
export * from "./db";
export * from "./redis";
export * from "./fds";
export * from "./jobs";
export * from "./health";
export * from "./observability";
export { errorResponse, fieldPath, HttpError, validate } from "./http";
export type { ErrorBody, ErrorResponse } from "./http";
