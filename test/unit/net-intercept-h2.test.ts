/**
 * HTTP/2 through the intercept proxy: a guest that offers h2 by ALPN gets it, its streams are
 * multiplexed onto one upstream HTTP/2 connection, each request passes the same allowlist,
 * secret and hook rules as HTTP/1.1 and reports its own event, trailers pass both ways
 * (including gRPC's trailers-only form), an origin without h2 is reached over HTTP/1.1, and
 * h2c with prior knowledge works on plain TCP.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  InterceptUpstream,
  PASS_THROUGH_POLICY,
  type HttpPolicy,
  type NetworkEventInfo,
} from "../../src/net/intercept/index.js";
import { createHttpPolicy } from "../../src/net/http-policy/index.js";
import { EgressPolicy } from "../../src/net/policy/index.js";
import { createCa } from "../../src/net/tls/index.js";
import {
  guestH2,
  h2Request,
  startH2Upstreams,
  type H2Upstreams,
} from "./net-intercept-h2-fixtures.js";
import { settle, startUpstreams, type Upstreams } from "./net-intercept-guest.js";

const ca = createCa();
let h2: H2Upstreams;
let h1: Upstreams;
const proxies: InterceptUpstream[] = [];
before(async () => {
  [h2, h1] = await Promise.all([startH2Upstreams(), startUpstreams()]);
});
after(() => {
  for (const p of proxies) p.close();
  h2.close();
  h1.close();
});

function proxy(httpPolicy: HttpPolicy = PASS_THROUGH_POLICY, allowedHosts = ["api.test"]) {
  const events: NetworkEventInfo[] = [];
  const p = new InterceptUpstream({
    policy: new EgressPolicy({ allowedHosts, allowPrivateHosts: true }),
    httpPolicy,
    ca,
    upstreamCaPems: [h2.caPem, h1.upstreamCaPem],
    resolveOverrides: new Map(["api.test", "other.test"].map((n) => [n, "127.0.0.1"])),
    onEvent: (e) => events.push(e),
  });
  proxies.push(p);
  return { p, events };
}

const tls = () => ({ caPem: ca.certPem });

test("a guest offering h2 speaks HTTP/2 end to end; its streams share one upstream connection", async () => {
  const { p, events } = proxy();
  const session = await guestH2(p, "api.test", h2.tlsPort, tls());
  assert.equal((session.socket as unknown as { alpnProtocol: string }).alpnProtocol, "h2");
  const before = h2.seen.length;
  const replies = await Promise.all(
    Array.from({ length: 20 }, (_, i) => h2Request(session, { ":path": `/echo?i=${i}` })),
  );
  session.close();
  for (const [i, r] of replies.entries()) {
    assert.equal(r.status, 200);
    assert.equal(r.headers["x-upstream"], "h2");
    assert.equal(JSON.parse(r.body.toString()).headers[":path"], `/echo?i=${i}`);
  }
  const seen = h2.seen.slice(before);
  assert.equal(seen.length, 20);
  assert.ok(seen.every((s) => s.tls));
  assert.equal(new Set(seen.map((s) => s.connection)).size, 1, "one upstream connection");
  assert.equal(seen[0]?.headers[":authority"], `api.test:${h2.tlsPort}`);
  await settle(events, 20);
  assert.equal(events.length, 20);
  assert.ok(events.every((e) => e.status === 200 && e.scheme === "https" && !e.blocked));
  assert.ok(events.some((e) => e.url === `https://api.test:${h2.tlsPort}/echo?i=7`));
});

test("request bodies go upstream and trailers come back, as gRPC needs", async () => {
  const { p } = proxy();
  const session = await guestH2(p, "api.test", h2.tlsPort, tls());
  const echoed = await h2Request(session, { ":method": "POST", ":path": "/echo" }, "payload");
  assert.equal(JSON.parse(echoed.body.toString()).body, "payload");
  const withTrailers = await h2Request(
    session,
    {
      ":method": "POST",
      ":path": "/trailers",
      "content-type": "application/grpc",
      te: "trailers",
    },
    Buffer.from([0, 0, 0, 0, 0]),
  );
  assert.equal(withTrailers.trailers?.["grpc-status"], "0");
  assert.equal(withTrailers.trailers?.["x-trailer"], "end-of-stream");
  assert.deepEqual([...withTrailers.body], [0, 0, 0, 0, 2, 0x68, 0x69]);
  // The upstream got `te: trailers` (gRPC servers insist on it).
  assert.equal(h2.seen.find((s) => s.headers[":path"] === "/trailers")?.headers.te, "trailers");
  // A "trailers-only" answer (status in the one HEADERS frame) stays one.
  const error = await h2Request(session, { ":method": "POST", ":path": "/grpc-error" }, "x");
  assert.equal(error.headers["grpc-status"], "5");
  assert.equal(error.trailers, undefined);
  session.close();
});

test("each stream gets its own verdict: TLS name, allowlist and rules apply per request", async () => {
  const policy = createHttpPolicy({
    rules: [{ phase: "before", path: "/blocked/*", action: "block" }],
  });
  const { p, events } = proxy(policy, ["api.test"]);
  const session = await guestH2(p, "api.test", h2.tlsPort, tls());
  const [ok, ruled, fronted] = await Promise.all([
    h2Request(session, { ":path": "/echo" }),
    h2Request(session, { ":path": "/blocked/x" }),
    h2Request(session, { ":path": "/echo", ":authority": `other.test:${h2.tlsPort}` }),
  ]);
  session.close();
  assert.equal(ok.status, 200);
  assert.equal(ruled.status, 403);
  assert.equal(ruled.headers["x-wheellock-blocked"], "blocked_by_rule");
  assert.equal(fronted.status, 403);
  assert.equal(fronted.headers["x-wheellock-blocked"], "sni_mismatch");
  await settle(events, 3);
  const codes = events.map((e) => e.code ?? "ok").sort();
  assert.deepEqual(codes, ["blocked_by_rule", "ok", "sni_mismatch"]);
  assert.equal(h2.seen.filter((s) => String(s.headers[":path"]).startsWith("/blocked")).length, 0);
});

test("secrets are substituted per request over h2, only into allowed headers", async () => {
  const value = "h2-secret-71c4";
  const policy = createHttpPolicy({
    secrets: [{ name: "TOKEN", value, hosts: [`api.test:${h2.tlsPort}`] }],
  });
  const ph = policy.placeholders().TOKEN as string;
  const { p, events } = proxy(policy);
  const session = await guestH2(p, "api.test", h2.tlsPort, tls());
  const good = await h2Request(session, { ":path": "/echo?s=1", authorization: `Bearer ${ph}` });
  const leak = await h2Request(session, { ":path": "/echo?s=2", "x-other": ph });
  session.close();
  assert.equal(good.status, 200);
  const seen = h2.seen.find((s) => s.headers[":path"] === "/echo?s=1");
  assert.equal(seen?.headers.authorization, `Bearer ${value}`);
  assert.equal(leak.status, 403);
  assert.equal(
    h2.seen.find((s) => s.headers[":path"] === "/echo?s=2"),
    undefined,
  );
  assert.ok(!JSON.stringify(events).includes(value), "events never carry the value");
});

test("a hook can answer an h2 request itself", async () => {
  const policy = createHttpPolicy({
    rules: [
      {
        phase: "before",
        path: "/mock",
        hook: () => ({ respond: { status: 418, body: "teapot", headers: { "x-mock": "1" } } }),
      },
    ],
  });
  const { p } = proxy(policy);
  const session = await guestH2(p, "api.test", h2.tlsPort, tls());
  const r = await h2Request(session, { ":path": "/mock" });
  session.close();
  assert.equal(r.status, 418);
  assert.equal(r.body.toString(), "teapot");
  assert.equal(r.headers["x-mock"], "1");
});

test("an origin without h2 is reached over HTTP/1.1 from an h2 guest", async () => {
  const { p, events } = proxy();
  const session = await guestH2(p, "api.test", h1.httpsPort, tls());
  const r = await h2Request(session, { ":method": "POST", ":path": "/h1-origin" }, "abc");
  const again = await h2Request(session, { ":path": "/h1-origin-2" });
  session.close();
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body.toString()).body, "abc");
  assert.equal(again.status, 200);
  const seen = h1.seen.filter((s) => s.url.startsWith("/h1-origin"));
  assert.equal(seen.length, 2);
  await settle(events, 2);
  assert.ok(events.every((e) => e.status === 200));
});

test("h2c with prior knowledge on plain TCP reaches an h2c upstream", async () => {
  const { p, events } = proxy();
  const session = await guestH2(p, "api.test", h2.h2cPort, undefined);
  const r = await h2Request(session, { ":path": "/echo?h2c=1" });
  session.close();
  assert.equal(r.status, 200);
  const seen = h2.seen.find((s) => s.headers[":path"] === "/echo?h2c=1");
  assert.equal(seen?.tls, false);
  await settle(events);
  assert.equal(events[0]?.scheme, "http");
});

test("a large download and upload keep flow control (slow guest, bounded proxy buffering)", async () => {
  const { p } = proxy();
  const session = await guestH2(p, "api.test", h2.tlsPort, tls());
  const bytes = 32 * 1024 * 1024;
  const got = await new Promise<number>((resolve, reject) => {
    const req = session.request({ ":path": `/big?bytes=${bytes}` });
    let n = 0;
    req.on("data", (c: Buffer) => {
      n += c.length;
      if (n % (4 * 1024 * 1024) < c.length) {
        req.pause();
        setTimeout(() => req.resume(), 20);
      }
    });
    req.on("end", () => resolve(n));
    req.on("error", reject);
  });
  assert.equal(got, bytes);
  const upload = Buffer.alloc(8 * 1024 * 1024, 0x75);
  const echoed = await h2Request(session, { ":method": "POST", ":path": "/echo" }, upload);
  assert.equal(JSON.parse(echoed.body.toString()).body.length, upload.length);
  session.close();
});
