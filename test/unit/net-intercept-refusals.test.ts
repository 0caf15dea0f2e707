/**
 * Issue 18 review: what live approval and audit mode must never open, and the trace context
 * a guest may not choose. Against upstream servers on 127.0.0.1.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { RefusedRequest } from "../../src/net/index.js";
import { DialRefused, HostDialer } from "../../src/net/intercept/upstream-dial.js";
import { isLinkLocalAddress } from "../../src/net/ip-ranges.js";
import { EgressPolicy } from "../../src/net/policy/egress-policy.js";
import { createHttpPolicy } from "../../src/net/http-policy/index.js";
import { createCa } from "../../src/net/tls/index.js";
import { guestRequest, settle, upstreamFixture } from "./net-intercept-guest.js";

const ca = createCa();
const { up, proxy } = upstreamFixture(ca);
const approveAll = (asked: RefusedRequest[]) => (r: RefusedRequest) => {
  asked.push(r);
  return { allow: true, note: { approval: { decision: "once" as const, waitedMs: 1 } } };
};

test("a private or metadata literal outside the allowlist is private_address, never asked", async () => {
  const asked: RefusedRequest[] = [];
  const { p, events } = proxy({ onHostRefused: approveAll(asked) });
  for (const name of ["169.254.169.254", "10.0.2.2"]) {
    const res = await guestRequest(p, { name, port: up().httpPort, tls: false });
    assert.equal(res.status, 403);
    assert.equal(res.headers["x-wheellock-blocked"], "private_address");
  }
  await settle(events, 2);
  assert.deepEqual(
    events.map((e) => e.code),
    ["private_address", "private_address"],
  );
  assert.equal(asked.length, 0, "no approver is asked about them");
});

test("a name let through by approval never dials a link-local (metadata) address", async () => {
  // The dialer's check, without dialing: no traffic leaves 127.0.0.1 even if it regressed.
  const policy = new EgressPolicy({ allowedHosts: ["api.test"], allowPrivateHosts: true });
  const dialer = new HostDialer({
    policy,
    resolveOverrides: new Map([
      ["meta.test", "169.254.169.254"],
      ["lan.test", "10.1.2.3"],
    ]),
  });
  // "once": the name is in no entry.
  await assert.rejects(dialer.resolveChecked("meta.test"), (e: unknown) => {
    assert.ok(e instanceof DialRefused);
    assert.equal(e.code, "private_address");
    assert.match(e.message, /meta\.test resolves to 169\.254\.169\.254/);
    return true;
  });
  // "sandbox": the entry an approval added does not count either.
  const changes: string[][] = [];
  policy.allowlist.onChange(() => changes.push(policy.allowlist.approvedEntries));
  policy.allowlist.add(["meta.test:80"], { approved: true });
  // What the supervisor writes to the state record (inspect) and allowedHosts() report.
  assert.deepEqual(policy.allowlist.approvedEntries, ["meta.test:80"]);
  await assert.rejects(dialer.resolveChecked("meta.test"), DialRefused);
  assert.equal(await dialer.resolveChecked("lan.test"), "10.1.2.3", "only link-local is held back");
  // Someone writing the entry (allow-list add) makes it theirs: documented as reachable.
  policy.allowlist.add(["meta.test:80"]);
  assert.equal(await dialer.resolveChecked("meta.test"), "169.254.169.254");
  assert.deepEqual(changes, [["meta.test:80"], []], "losing the mark is a change the record sees");
  for (const a of ["169.254.1.1", "::ffff:169.254.169.254", "fd00:ec2::254", "fe80::1"])
    assert.equal(isLinkLocalAddress(a), true, a);
  assert.equal(isLinkLocalAddress("10.0.2.2"), false);
  dialer.close();
});

test("with propagation, the guest's own traceparent and tracestate never go upstream", async () => {
  const { p } = proxy({
    // What the tracer returns when no SDK records: remove, add nothing.
    upstreamHeaders: () => [
      ["traceparent", ""],
      ["tracestate", ""],
    ],
  });
  await guestRequest(p, {
    name: "api.test",
    port: up().httpPort,
    tls: false,
    path: "/forged-trace",
    headers: {
      traceparent: `00-${"b".repeat(32)}-${"c".repeat(16)}-01`,
      tracestate: "guest=forged",
    },
  });
  const seen = up().seen.find((s) => s.url === "/forged-trace");
  assert.ok(seen, "the request went upstream");
  const names = seen.headers.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  assert.ok(!names.includes("traceparent"), "no traceparent of the guest's");
  assert.ok(!names.includes("tracestate"), "no tracestate of the guest's");
});

test("the approver is told the address the host would dial for the name", async () => {
  const asked: RefusedRequest[] = [];
  const { p, events } = proxy({ onHostRefused: approveAll(asked) });
  const res = await guestRequest(p, { name: "other.test", port: up().httpPort, tls: false });
  assert.equal(res.status, 200);
  await settle(events);
  assert.equal(asked.length, 1);
  assert.equal(asked[0]?.host, "other.test");
  assert.equal(asked[0]?.address, "127.0.0.1", "the test's resolve override for other.test");
});

test("a refused name is never looked up in DNS before a decision (no exfiltration by name)", async () => {
  const asked: RefusedRequest[] = [];
  const lookedUp: string[] = [];
  const { p, events } = proxy({
    onHostRefused: (r) => {
      asked.push(r);
      return { allow: false };
    },
    resolve4: (name) => {
      lookedUp.push(name);
      return Promise.resolve(["127.0.0.1"]);
    },
  });
  const name = "c2VjcmV0LWRhdGE.exfil.example";
  const res = await guestRequest(p, { name, port: up().httpPort, tls: false });
  assert.equal(res.status, 403);
  await settle(events);
  assert.equal(asked.length, 1, "the request was put to the approver");
  assert.equal(asked[0]?.address, undefined, "no address without a lookup");
  assert.deepEqual(lookedUp, [], "the guest's chosen name never reached DNS");
});

test("a request that would leak a secret is refused as such, never put to the approver", async () => {
  const policy = createHttpPolicy({
    secrets: [{ name: "TOKEN", value: "real-5e6f7a", hosts: [`api.test:${up().httpsPort}`] }],
  });
  const ph = policy.placeholders().TOKEN as string;
  const asked: RefusedRequest[] = [];
  const { p, events } = proxy({ httpPolicy: policy, onHostRefused: approveAll(asked) });
  const res = await guestRequest(p, {
    name: "other.test",
    port: up().httpsPort,
    tls: true,
    caPem: ca.certPem,
    path: "/leak-asked",
    headers: { authorization: `Bearer ${ph}` },
  });
  assert.equal(res.status, 403);
  assert.equal(res.headers["x-wheellock-blocked"], "secret_leak");
  assert.equal(asked.length, 0, "nobody is asked");
  await settle(events);
  assert.equal(events[0]?.code, "secret_leak");
  assert.equal(events[0]?.approval, undefined);
});

test("a request in flight when the sandbox stops is reported, with the stop's code", async () => {
  const { p, events } = proxy();
  const download = guestRequest(p, {
    name: "api.test",
    port: up().httpPort,
    tls: false,
    path: "/big?bytes=50000000",
    countOnly: true,
    slowReadMs: 20,
  }).catch(() => undefined);
  for (let i = 0; i < 500 && !up().seen.some((s) => s.url.startsWith("/big?bytes=5")); i++)
    await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(events.length, 0, "still in flight");
  p.endInFlight({ blocked: true, code: "budget_exceeded", reason: "egress budget spent" });
  await settle(events);
  assert.equal(events[0]?.code, "budget_exceeded");
  assert.equal(events[0]?.blocked, true);
  assert.ok((events[0]?.bytesIn ?? 0) > 0, "the bytes it moved are counted");
  p.close();
  await download;
});
