// The node's HTTP status for each typed error: the caller's fault (4xx) or not (5xx). An image
// the node cannot pull was a 409 "not running" once, then a 500 "internal error"; it is the
// registry's failure as the node saw it: 502 with the code ErrImage and the registry named.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ErrCapacity,
  ErrImage,
  ErrInvalidConfig,
  ErrNotFound,
  ErrSetup,
  ErrTimeout,
  ErrVMNotRunning,
} from "../../src/errors.js";
import { statusFor } from "../../src/serve/http-json.js";

test("each typed error has the status of whose fault it is, and keeps its code", () => {
  const cases: Array<[Error, number]> = [
    [new ErrInvalidConfig("bad option"), 400],
    [new ErrNotFound("image nothing:latest not found"), 404],
    [new ErrVMNotRunning("stopped"), 409],
    [new ErrImage("registry 127.0.0.1:1 unreachable: bad port"), 502],
    [new ErrCapacity("full"), 503],
    [new ErrSetup("run wheellock setup"), 503],
    [new ErrTimeout("boot timed out"), 504],
  ];
  for (const [err, status] of cases) {
    const got = statusFor(err);
    assert.equal(got.status, status, err.constructor.name);
    assert.equal(got.code, (err as ErrImage).code);
    assert.equal(got.message, err.message);
  }
});

test("anything untyped is a 500 that says nothing of its insides", () => {
  assert.deepEqual(statusFor(new Error("/secret/path exploded")), {
    status: 500,
    code: "ErrInternal",
    message: "internal error",
  });
});
