/**
 * The gateway address stands for the host in intercept mode too: a request addressed to
 * `10.0.2.2:PORT` (what matchlock's Python SDK, which has no add_host, uses to reach a server on
 * the host) reaches the host's loopback when the allowlist names it and private hosts are
 * allowed, and is refused otherwise. Before the fix the proxy dialed 10.0.2.2 itself: 502.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { interceptResolveOverrides } from "../../src/sandbox/network.js";
import { createCa } from "../../src/net/tls/index.js";
import { guestRequest, settle, upstreamFixture } from "./net-intercept-guest.js";

const ca = createCa();
const fixture = upstreamFixture(ca);

// The stack hands the proxy a flow to the gateway as one to host loopback; the Host header
// still names the gateway.
const toGateway = (port: number) => ({
  name: "127.0.0.1",
  port,
  tls: false,
  path: "/via-gateway",
  headers: { host: `10.0.2.2:${port}` },
});

test("a request to the gateway address reaches the host's loopback", async () => {
  const { p, events } = fixture.proxy({
    allowedHosts: ["10.0.2.2"],
    allowPrivate: true,
    resolveOverrides: interceptResolveOverrides({}),
  });
  const res = await guestRequest(p, toGateway(fixture.up().httpPort));
  assert.equal(res.status, 200);
  assert.ok(fixture.up().seen.some((s) => s.url === "/via-gateway"));
  await settle(events);
  assert.equal(events[0]?.host, "10.0.2.2");
});

test("the gateway address is still refused without private hosts or outside the allowlist", async () => {
  const overrides = interceptResolveOverrides({});
  const port = fixture.up().httpPort;
  const noPrivate = fixture.proxy({
    allowedHosts: ["10.0.2.2"],
    allowPrivate: false,
    resolveOverrides: overrides,
  });
  assert.equal((await guestRequest(noPrivate.p, toGateway(port))).status, 403);
  await settle(noPrivate.events);
  assert.equal(noPrivate.events[0]?.code, "private_address");
  const notAllowed = fixture.proxy({
    allowedHosts: ["api.test"],
    allowPrivate: true,
    resolveOverrides: overrides,
  });
  assert.equal((await guestRequest(notAllowed.p, toGateway(port))).status, 403);
});

test("a user's own override of the gateway literal wins", () => {
  assert.equal(interceptResolveOverrides({ "10.0.2.2": "192.0.2.7" }).get("10.0.2.2"), "192.0.2.7");
});
