/**
 * Layer 1: the runtime's error families (runtime/errors.ts) and the HTTP mapping by class
 * (runtime/http/errors.ts): a caller catches a family, and a new subclass is answered by its family
 * without an edit to the mapping.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigurationError, InputError, isDriverUnavailable, NotFoundError, ShopfdsError, UnavailableError } from "../../runtime/errors";
import { errorResponse, HttpError } from "../../runtime/http/errors";
import { BlacklistEntryNotFoundError, BlacklistInputError, BlacklistUnavailableError, BlacklistWriteError } from "../../runtime/fds/blacklist";
import { InvalidValueError } from "../../runtime/fds/canonical";
import { BrokerUnavailableError } from "../../runtime/jobs/broker-link";
import { DatabaseOptionsError } from "../../runtime/db/options";
import { StackOutputsError } from "../../runtime/outputs";
import { TaskFailedError } from "../../runtime/jobs/producer";
import { OrderInputError } from "../../service/shop/orders";

describe("error families", () => {
  it("every runtime error belongs to its family, with its class's name", () => {
    const cases: [Error, Function][] = [
      [new InvalidValueError("ip", "must be an address"), InputError],
      [new BlacklistInputError(["ttlSeconds: must be a positive integer (got -5)"]), InputError],
      [new BlacklistEntryNotFoundError("ip"), NotFoundError],
      [new BlacklistUnavailableError("both down"), UnavailableError],
      [new BrokerUnavailableError("link down"), UnavailableError],
      [new DatabaseOptionsError(["primary.port: must be an integer"]), ConfigurationError],
      [new StackOutputsError("bad", "env"), ConfigurationError],
      [new BlacklistWriteError("half"), UnavailableError],
      [new TaskFailedError("id", "ValueError", "no", null), ShopfdsError],
      [new OrderInputError("items.0", "product 1 does not exist"), InputError],
    ];
    for (const [error, family] of cases) {
      assert.ok(error instanceof family && error instanceof ShopfdsError, `${error.name} is a ${family.name}`);
      assert.equal(error.name, error.constructor.name);
    }
    assert.deepEqual((new DatabaseOptionsError(["a: b"]) as ConfigurationError).problems, ["a: b"]);
  });

  it("HTTP answers by family: a service's new subclasses become 503, 422 and 404 with no edit to the mapping", () => {
    class PaymentGatewayDown extends UnavailableError {}
    class CouponInputError extends InputError {}
    class CouponNotFound extends NotFoundError {}
    const down = errorResponse(new PaymentGatewayDown("gateway timed out", { retryAfterSeconds: 30 }));
    assert.deepEqual([down.status, down.headers, down.body.error.code, down.unexpected], [503, { "retry-after": "30" }, "SERVICE_UNAVAILABLE", true]);
    assert.doesNotMatch(JSON.stringify(down.body), /gateway/, "the internals stay out of the answer");
    assert.deepEqual(errorResponse(new CouponInputError("coupon", "coupon: expired")).body, { error: { code: "INVALID_INPUT", field: "coupon", message: "coupon: expired" } });
    assert.equal(errorResponse(new CouponInputError("coupon", "x")).status, 422);
    assert.deepEqual([errorResponse(new CouponNotFound("coupon", "coupon: none such")).status, errorResponse(new CouponNotFound("coupon", "x")).body.error.code], [404, "NOT_FOUND"]);
    assert.equal(errorResponse(new BrokerUnavailableError("down")).headers["retry-after"], "5", "the default wait");
  });

  it("the runtime's own errors keep their answers", () => {
    assert.deepEqual(errorResponse(new BlacklistInputError(["ttlSeconds: must be a positive integer (got -5)"])).body, { error: { code: "INVALID_INPUT", field: "ttlSeconds", message: "ttlSeconds: must be a positive integer (got -5)" } });
    assert.deepEqual(errorResponse(new BlacklistInputError(["(input): must be an object"])).body.error.field, "body");
    assert.deepEqual(errorResponse(new BlacklistEntryNotFoundError("email")), { status: 404, headers: {}, body: { error: { code: "ENTRY_NOT_FOUND", field: "value", message: "value: no current email entry for it" } }, unexpected: false });
    assert.deepEqual(errorResponse(new HttpError(409, "CONFLICT", "taken", "email")).body, { error: { code: "CONFLICT", field: "email", message: "taken" } });
    assert.equal(errorResponse(new BlacklistWriteError("half")).status, 503, "stored but not replicated: retry (idempotent)");
  });

  it("the one driver classifier: pg's and ioredis's 'unavailable now', and nothing else (negative cases)", () => {
    const pgError = (code: string) => Object.assign(new Error("x"), { code });
    for (const e of [pgError("ECONNREFUSED"), pgError("08006"), pgError("57P01"), pgError("53300"), new Error("Connection terminated unexpectedly"), new Error("CLUSTERDOWN The cluster is down"), Object.assign(new Error("OOM command not allowed when used memory > 'maxmemory'."), { name: "ReplyError" }), Object.assign(new Error("EXECABORT"), { previousErrors: [new Error("TRYAGAIN")] })]) {
      assert.equal(isDriverUnavailable(e), true, e.message);
      assert.equal(errorResponse(e).status, 503, e.message);
    }
    for (const e of [pgError("23505"), pgError("42P01"), new Error("WRONGTYPE Operation against a key"), new TypeError("x is undefined")]) {
      assert.equal(isDriverUnavailable(e), false, e.message);
      assert.equal(errorResponse(e).status, 500, e.message);
    }
  });
});
