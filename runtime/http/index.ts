/**
 * @shopfds/runtime/http: the runtime's errors as HTTP answers, for any framework. The Fastify and
 * Express adapters are their own entry points (./http/fastify, ./http/express): each needs its framework.
 */
export { errorResponse, fieldPath, HttpError, isUnavailable, RETRY_AFTER_SECONDS, validate } from "./errors";
export type { ErrorBody, ErrorResponse } from "./errors";
export { carriedWriteLocation, WRITE_LOCATION_COOKIE, WRITE_LOCATION_HTTP_HEADER, writeLocationCookie } from "./write-location";
