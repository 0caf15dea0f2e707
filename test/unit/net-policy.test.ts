import { test } from "node:test";
import assert from "node:assert/strict";
import { ErrInvalidConfig } from "../../src/errors.js";
import {
  EgressPolicy,
  HostAllowlist,
  canonicalHost,
  compileHostPattern,
} from "../../src/net/policy/index.js";

const allowed = (p: EgressPolicy, host: string, port = 443) => p.checkHost(host, port).allowed;

test("allowlist api.example.com: look-alikes denied, case and trailing dot canonical", () => {
  const p = new EgressPolicy({ allowedHosts: ["api.example.com"] });
  assert.equal(allowed(p, "api.example.com"), true);
  assert.equal(allowed(p, "API.EXAMPLE.COM"), true);
  assert.equal(allowed(p, "api.example.com."), true);
  assert.equal(allowed(p, "evilexample.com"), false);
  assert.equal(allowed(p, "api.example.com.evil.com"), false);
  assert.equal(allowed(p, "xapi.example.com"), false);
  assert.equal(allowed(p, "example.com"), false);
  const d = p.checkHost("evil.com", 443);
  assert.equal(d.allowed ? "" : d.code, "host_not_allowed");
});

test("glob forms: *, *.suffix (not the apex), prefix.*, inner stars", () => {
  const m = (pattern: string, host: string) => compileHostPattern(pattern).matches(host, 80);
  assert.equal(m("*", "anything.test"), true);
  assert.equal(m("*.example.com", "a.example.com"), true);
  assert.equal(m("*.example.com", "a.b.example.com"), true);
  assert.equal(m("*.example.com", "example.com"), false);
  assert.equal(m("*.example.com", "badexample.com"), false);
  assert.equal(m("example.*", "example.org"), true);
  assert.equal(m("example.*", "example"), false);
  assert.equal(m("api-*.example.com", "api-eu.example.com"), true);
  assert.equal(m("api-*.example.com", "api.example.com"), false);
  assert.equal(m("a*b*c.test", "a1b2c.test"), true);
  assert.equal(m("a*b*c.test", "acb.test"), false);
  assert.equal(m("*.EXAMPLE.com", "x.example.com"), true);
});

test("ports: an entry with a port allows only that port", () => {
  const list = new HostAllowlist(["db.example.com:5432", "web.example.com"]);
  assert.equal(list.allows("db.example.com", 5432), true);
  assert.equal(list.allows("db.example.com", 443), false);
  assert.equal(list.allows("web.example.com", 8443), true);
});

test("empty list: reference semantics allow all; denyWhenEmpty denies all", () => {
  assert.equal(new HostAllowlist().allows("x.test", 1), true);
  const closed = new HostAllowlist([], { denyWhenEmpty: true });
  assert.equal(closed.allows("x.test", 1), false);
  closed.add(["x.test"]);
  assert.equal(closed.allows("x.test", 1), true);
  closed.remove(["X.TEST"]);
  assert.equal(closed.allows("x.test", 1), false);
});

test("runtime add/remove: de-duplicated, ordered, all-or-nothing on bad entries", () => {
  const list = new HostAllowlist(["a.test"]);
  list.add(["b.test", "A.test", "c.test"]);
  assert.deepEqual(list.entries, ["a.test", "b.test", "c.test"]);
  assert.throws(() => list.add(["d.test", "bad host"]), ErrInvalidConfig);
  assert.deepEqual(list.entries, ["a.test", "b.test", "c.test"]);
  list.remove(["b.test"]);
  assert.deepEqual(list.entries, ["a.test", "c.test"]);
});

test("deleting the last entry denies every host instead of allowing all", () => {
  const list = new HostAllowlist(["a.test", "b.test"]);
  assert.equal(list.emptyDeniesAll, false);
  list.remove(["a.test", "B.test"]);
  assert.deepEqual(list.entries, []);
  assert.equal(list.emptyDeniesAll, true);
  assert.equal(list.allows("a.test", 443), false);
  assert.equal(list.allows("anything.test", 80), false);
  list.add(["c.test"]);
  assert.equal(list.allows("c.test", 80), true);
  assert.equal(list.allows("a.test", 80), false);
  // A list empty from the start keeps the reference meaning (all hosts) until it is used.
  const open = new HostAllowlist();
  open.remove(["x.test"]);
  assert.equal(open.allows("x.test", 80), true);
});

test("bad patterns are configuration errors", () => {
  for (const bad of [
    "",
    "a b.test",
    "a..b",
    "host:0",
    "host:99999",
    "host:x",
    "1.2.3",
    "a/b",
    "ä.test",
  ])
    assert.throws(() => compileHostPattern(bad), ErrInvalidConfig, bad);
});

test("host parsing refuses NUL, userinfo, percent-encoding, IPv6, non-ASCII, numeric IP forms", () => {
  for (const bad of [
    "evil.com\u0000.allowed.com",
    "api.example.com@evil.com",
    "api%2eexample.com",
    "[::1]",
    "fe80::1%eth0",
    "аpple.com", // Cyrillic a
    "a b.com",
    "2130706433",
    "0x7f.0.0.1",
    "api.example.com:443",
    "",
    "a..b",
  ])
    assert.equal(canonicalHost(bad).ok, false, JSON.stringify(bad));
  assert.deepEqual(canonicalHost("Xn--80ak6aa92e.COM."), { ok: true, host: "xn--80ak6aa92e.com" });
  assert.deepEqual(canonicalHost("10.0.0.1"), { ok: true, host: "10.0.0.1" });
});

test("dialed addresses: private ranges refused unless allowed", () => {
  const p = new EgressPolicy({ allowedHosts: ["*"] });
  for (const a of ["127.0.0.1", "169.254.169.254", "10.1.1.1", "100.64.0.1", "::ffff:127.0.0.1"]) {
    const d = p.checkDialAddress(a);
    assert.equal(d.allowed ? "" : d.code, "private_address", a);
  }
  assert.equal(p.checkDialAddress("93.184.216.34").allowed, true);
  assert.equal(
    new EgressPolicy({ allowPrivateHosts: true }).checkDialAddress("127.0.0.1").allowed,
    true,
  );
});
