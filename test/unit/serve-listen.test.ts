// Off loopback, a node serves plain HTTP only when told to (--insecure), and then says what
// that means once: the operator may have meant TLS to end in front of it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ErrInvalidConfig } from "../../src/errors.js";
import { checkTransportSecurity } from "../../src/serve/listen.js";

test("plain HTTP off loopback: refused, or with --insecure warned about once", () => {
  const warned: string[] = [];
  const warn = (m: string) => void warned.push(m);
  const everywhere = { host: "0.0.0.0", port: 7777 };
  assert.throws(() => checkTransportSecurity(everywhere, false, false, warn), ErrInvalidConfig);
  checkTransportSecurity(everywhere, false, true, warn);
  assert.equal(warned.length, 1);
  assert.match(warned[0] ?? "", /plain HTTP on 0\.0\.0\.0 \(--insecure\): tokens and secrets/);
  checkTransportSecurity(everywhere, true, false, warn);
  checkTransportSecurity({ host: "127.0.0.1", port: 7777 }, false, true, warn);
  checkTransportSecurity({ host: "::1", port: 7777 }, false, false, warn);
  assert.equal(warned.length, 1, "TLS and loopback need no warning");
});
