// Blocked network events carry the reference API's typed error for what refused them.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ErrBlocked,
  ErrHostNotAllowed,
  ErrSecretLeak,
  networkEventError,
  type NetworkEventInfo,
} from "../../src/index.js";

function event(patch: Partial<NetworkEventInfo>): NetworkEventInfo {
  return {
    method: "GET",
    url: "https://api.test/x",
    scheme: "https",
    host: "api.test",
    port: 443,
    bytesIn: 0,
    bytesOut: 0,
    durationMs: 1,
    blocked: true,
    requestId: 1,
    ...patch,
  };
}

test("each block code maps to the reference's error class, with the request in the message", () => {
  const notAllowed = networkEventError(event({ code: "host_not_allowed", reason: "not allowed" }));
  assert.ok(notAllowed instanceof ErrHostNotAllowed);
  assert.equal(notAllowed.code, "ErrHostNotAllowed");
  assert.equal(notAllowed.message, "GET https://api.test/x: not allowed");
  assert.ok(networkEventError(event({ code: "secret_leak" })) instanceof ErrSecretLeak);
  assert.ok(networkEventError(event({ code: "secret_requires_tls" })) instanceof ErrSecretLeak);
  for (const code of ["private_address", "blocked_by_rule", "sni_mismatch"] as const)
    assert.ok(networkEventError(event({ code })) instanceof ErrBlocked, code);
});

test("requests that were not refused by policy have no error", () => {
  assert.equal(networkEventError(event({ blocked: false })), undefined);
  assert.equal(networkEventError(event({ code: "upstream_error" })), undefined);
});
