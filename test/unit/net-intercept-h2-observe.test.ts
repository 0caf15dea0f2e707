/**
 * docs/OBSERVE.md over HTTP/2: each stream's event names who opened the flow, a stream to a
 * host outside the allowlist is put to the sandbox (approved, then denied) like an HTTP/1.1
 * request, and headers for upstream (traceparent) reach the origin.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { GuestOrigin, RefusedRequest } from "../../src/net/index.js";
import {
  InterceptUpstream,
  PASS_THROUGH_POLICY,
  type NetworkEventInfo,
} from "../../src/net/intercept/index.js";
import { EgressPolicy } from "../../src/net/policy/index.js";
import { createCa } from "../../src/net/tls/index.js";
import {
  guestH2,
  h2Request,
  startH2Upstreams,
  type H2Upstreams,
} from "./net-intercept-h2-fixtures.js";
import { settle } from "./net-intercept-guest.js";

const ca = createCa();
const ORIGIN: GuestOrigin = { execId: 7, pid: 99, command: ["grpcurl"] };
const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
let h2: H2Upstreams;
let proxy: InterceptUpstream;
const events: NetworkEventInfo[] = [];
const refusals: RefusedRequest[] = [];
let allow = true;

before(async () => {
  h2 = await startH2Upstreams();
  proxy = new InterceptUpstream({
    policy: new EgressPolicy({ allowedHosts: ["api.test"], allowPrivateHosts: true }),
    httpPolicy: PASS_THROUGH_POLICY,
    ca,
    upstreamCaPems: [h2.caPem],
    resolveOverrides: new Map(["api.test", "other.test"].map((n) => [n, "127.0.0.1"])),
    onEvent: (e) => events.push(e),
    origin: async () => ORIGIN,
    onHostRefused: async (r) => {
      refusals.push(r);
      return allow
        ? { allow: true, note: { approval: { decision: "once", waitedMs: 1 } } }
        : { allow: false, note: { approval: { decision: "deny", waitedMs: 2 } } };
    },
    upstreamHeaders: () => [["traceparent", TRACEPARENT]],
  });
});
after(() => {
  proxy.close();
  h2.close();
});

test("HTTP/2 streams: attribution, approval of a refused host, traceparent upstream", async () => {
  const allowed = await guestH2(proxy, "api.test", h2.tlsPort, { caPem: ca.certPem }, 41001);
  const ok = await h2Request(allowed, { ":path": "/echo?allowed" });
  assert.equal(ok.status, 200);
  allowed.close();
  const seen = h2.seen.find((s) => String(s.headers[":path"]).endsWith("?allowed"));
  assert.equal(seen?.headers.traceparent, TRACEPARENT);

  const other = await guestH2(proxy, "other.test", h2.tlsPort, { caPem: ca.certPem }, 41002);
  const approved = await h2Request(other, { ":path": "/echo?approved" });
  assert.equal(approved.status, 200);
  allow = false;
  const denied = await h2Request(other, { ":path": "/echo?denied" });
  assert.equal(denied.status, 403);
  other.close();
  assert.deepEqual(
    refusals.map((r) => [r.host, r.attribution?.execId]),
    [
      ["other.test", 7],
      ["other.test", 7],
    ],
  );
  assert.ok(!h2.seen.some((s) => String(s.headers[":path"]).endsWith("?denied")));
  await settle(events, 3);
  for (const e of events) assert.deepEqual(e.attribution, ORIGIN, e.url);
  const byPath = (q: string) => events.find((e) => e.url.endsWith(q));
  assert.equal(byPath("?approved")?.approval?.decision, "once");
  assert.equal(byPath("?denied")?.approval?.decision, "deny");
  assert.equal(byPath("?denied")?.code, "host_not_allowed");
});
