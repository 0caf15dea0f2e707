/**
 * The proxy's side of docs/OBSERVE.md, against upstream servers on 127.0.0.1: who opened a
 * flow (and the response waiting for that answer), requests the allowlist refused put to the
 * sandbox (approved, denied, audited — never past a secret's scope), the secrets a request
 * carried, and headers added upstream (traceparent).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { GuestOrigin, RefusedRequest } from "../../src/net/index.js";
import { createHttpPolicy } from "../../src/net/http-policy/index.js";
import { FlowOrigin } from "../../src/net/intercept/flow-origin.js";
import { createCa } from "../../src/net/tls/index.js";
import { guestRequest, guestSocket, settle, upstreamFixture } from "./net-intercept-guest.js";

const ca = createCa();
const { up, proxy } = upstreamFixture(ca);
const ORIGIN: GuestOrigin = { execId: 4, pid: 321, command: ["curl", "-s", "x"] };

const get = (
  p: Parameters<typeof guestRequest>[0],
  name: string,
  tls: boolean,
  extra: Pick<Parameters<typeof guestRequest>[1], "path" | "headers" | "srcPort" | "stamp"> = {},
) =>
  guestRequest(p, {
    name,
    port: tls ? up().httpsPort : up().httpPort,
    tls,
    caPem: ca.certPem,
    ...extra,
  });

test("each event names who opened the flow; the response waits until that is known", async () => {
  const asked: { protocol: string; guestPort: number }[] = [];
  let answeredAt = 0;
  const { p, events } = proxy({
    origin: async (flow) => {
      asked.push(flow);
      await new Promise((r) => setTimeout(r, 150));
      answeredAt = Date.now();
      return ORIGIN;
    },
  });
  const res = await get(p, "api.test", false, { path: "/who", srcPort: 40123 });
  const receivedAt = Date.now();
  assert.equal(res.status, 200);
  assert.ok(receivedAt >= answeredAt && answeredAt > 0, "the response came after the answer");
  assert.deepEqual(asked, [{ protocol: "tcp", guestPort: 40123 }]);
  await settle(events);
  assert.deepEqual(events[0]?.attribution, ORIGIN);
  assert.equal(typeof events[0]?.requestId, "number");
});

test("a stamped flow's origin is asked with the stamp; an answer given at once holds nothing", async () => {
  const asked: unknown[] = [];
  const { p, events } = proxy({
    origin: (flow) => {
      asked.push(flow);
      return ORIGIN;
    },
  });
  const stamp = { pid: 321, cgroup: 12n };
  const res = await get(p, "api.test", true, { path: "/stamped", srcPort: 40124, stamp });
  assert.equal(res.status, 200);
  assert.deepEqual(asked, [{ protocol: "tcp", guestPort: 40124, stamp }]);
  await settle(events);
  assert.deepEqual(events[0]?.attribution, ORIGIN);
});

test("an origin given at once is known from the start: whatever waits for it runs now", async () => {
  for (const given of [ORIGIN, undefined]) {
    const origin = new FlowOrigin(given);
    let ran = false;
    origin.whenKnown(() => (ran = true));
    assert.equal(ran, true, "no turn of the event loop");
    assert.equal(origin.origin, given);
  }
  const promised = new FlowOrigin(Promise.resolve(ORIGIN));
  let ran = false;
  promised.whenKnown(() => (ran = true));
  assert.equal(ran, false, "a promise is waited for");
  assert.equal(await promised.wait(), ORIGIN);
  assert.equal(ran, true);
});

test("a refused host put to the sandbox: approved goes through, denied gets 403 with the reason", async () => {
  const refusals: RefusedRequest[] = [];
  let allow = true;
  const { p, events } = proxy({
    origin: async () => ORIGIN,
    onHostRefused: async (r) => {
      refusals.push(r);
      return allow
        ? { allow: true, note: { approval: { decision: "once", waitedMs: 5 } } }
        : {
            allow: false,
            reason: "denied by a person",
            note: { approval: { decision: "deny", waitedMs: 7 } },
          };
    },
  });
  const ok = await get(p, "other.test", true, { path: "/approved", srcPort: 40001 });
  assert.equal(ok.status, 200);
  assert.equal(refusals[0]?.host, "other.test");
  assert.equal(refusals[0]?.port, up().httpsPort);
  assert.deepEqual(refusals[0]?.attribution, ORIGIN);
  allow = false;
  const no = await get(p, "other.test", true, { path: "/denied", srcPort: 40002 });
  assert.equal(no.status, 403);
  assert.equal(no.headers["x-wheellock-blocked"], "host_not_allowed");
  assert.match(no.body.toString(), /denied by a person/);
  await settle(events, 2);
  assert.deepEqual(events[0]?.approval, { decision: "once", waitedMs: 5 });
  assert.equal(events[0]?.blocked, false);
  assert.equal(events[1]?.blocked, true);
  assert.equal(events[1]?.approval?.decision, "deny");
  assert.ok(!up().seen.some((s) => s.url === "/denied"), "a denied request reaches no upstream");
});

test("only the allowlist is put to the sandbox: an allowed host never is", async () => {
  let asked = 0;
  const { p } = proxy({
    onHostRefused: () => {
      asked++;
      return { allow: true };
    },
  });
  assert.equal((await get(p, "api.test", false)).status, 200);
  assert.equal(asked, 0);
});

test("audit: the refused request goes through and its event says what the allowlist thought", async () => {
  const { p, events } = proxy({
    onHostRefused: (r) => ({
      allow: true,
      note: { audit: { code: "host_not_allowed", reason: r.reason } },
    }),
  });
  const res = await get(p, "other.test", false, { path: "/audited" });
  assert.equal(res.status, 200);
  await settle(events);
  assert.equal(events[0]?.blocked, false);
  assert.equal(events[0]?.audit?.code, "host_not_allowed");
  assert.match(events[0]?.audit?.reason ?? "", /other.test is not in the allowlist/);
});

test("approving a host does not let a secret's placeholder go there", async () => {
  const policy = createHttpPolicy({
    secrets: [{ name: "TOKEN", value: "real-9f8e7d", hosts: [`api.test:${up().httpsPort}`] }],
  });
  const ph = policy.placeholders().TOKEN as string;
  const { p, events } = proxy({
    httpPolicy: policy,
    onHostRefused: () => ({
      allow: true,
      note: { approval: { decision: "sandbox", waitedMs: 1 } },
    }),
  });
  const res = await get(p, "other.test", true, {
    path: "/leak",
    headers: { authorization: `Bearer ${ph}` },
  });
  assert.equal(res.status, 403);
  assert.equal(res.headers["x-wheellock-blocked"], "secret_leak");
  assert.ok(!up().seen.some((s) => s.url === "/leak"));
  await settle(events);
  assert.equal(events[0]?.code, "secret_leak");
});

test("the secrets substituted into a request are named in its event", async () => {
  const policy = createHttpPolicy({
    secrets: [{ name: "TOKEN", value: "real-1a2b3c", hosts: [`api.test:${up().httpsPort}`] }],
  });
  const ph = policy.placeholders().TOKEN as string;
  const { p, events } = proxy({ httpPolicy: policy });
  await get(p, "api.test", true, { path: "/with", headers: { authorization: `Bearer ${ph}` } });
  await get(p, "api.test", true, { path: "/without" });
  await settle(events, 2);
  assert.deepEqual(events[0]?.secrets, ["TOKEN"]);
  assert.equal(events[1]?.secrets, undefined);
});

test("headers for upstream replace the guest's own of that name", async () => {
  const { p } = proxy({
    upstreamHeaders: (requestId) => [
      ["traceparent", `00-${"a".repeat(32)}-${String(requestId).padStart(16, "0")}-01`],
    ],
  });
  await get(p, "api.test", false, {
    path: "/traced",
    headers: { traceparent: "00-guest-made-this-up-00" },
  });
  const seen = up().seen.find((s) => s.url === "/traced");
  const values = (seen?.headers ?? []).filter(
    (_, i, all) => i % 2 === 1 && all[i - 1]?.toLowerCase() === "traceparent",
  );
  assert.equal(values.length, 1);
  assert.match(values[0] ?? "", /^00-a{32}-0{15}\d-01$/);
});

function heldProxy() {
  let signal: AbortSignal | undefined;
  let held!: () => void;
  const asked = new Promise<void>((r) => (held = r));
  const { p } = proxy({
    onHostRefused: (_r, gone) => {
      signal = gone;
      held();
      return new Promise((resolve) =>
        gone.addEventListener("abort", () => resolve({ allow: false })),
      );
    },
  });
  const left = async (): Promise<boolean> => {
    for (let i = 0; i < 200 && !signal?.aborted; i++) await new Promise((r) => setTimeout(r, 10));
    return signal?.aborted === true;
  };
  return { p, asked, signal: () => signal, left };
}

test("a held request whose guest closes the connection is let go at once (its place is free)", async () => {
  const { p, asked, signal, left } = heldProxy();
  const socket = await guestSocket(p, { name: "other.test", port: up().httpPort, tls: false });
  socket.on("error", () => undefined);
  socket.write(`GET /held HTTP/1.1\r\nHost: other.test:${up().httpPort}\r\n\r\n`);
  await asked;
  assert.equal(signal()?.aborted, false);
  socket.destroy();
  assert.equal(await left(), true, "the guest left: the hold is told");
});

// `curl -m 2` giving up: its FIN (or TLS close_notify) is all the host sees, and Node's server
// keeps a half-closed connection open while the held request has no response.
for (const tls of [false, true]) {
  test(`a held request whose guest ends its side (${tls ? "TLS" : "plain"}) is let go at once`, async () => {
    const { p, asked, signal, left } = heldProxy();
    const port = tls ? up().httpsPort : up().httpPort;
    const socket = await guestSocket(p, { name: "other.test", port, tls, caPem: ca.certPem });
    socket.on("error", () => undefined);
    socket.resume();
    socket.write(`GET /held HTTP/1.1\r\nHost: other.test:${port}\r\n\r\n`);
    await asked;
    assert.equal(signal()?.aborted, false);
    socket.end();
    assert.equal(await left(), true, "the guest ended its side: the hold is told");
  });
}

test("a name pinned to a link-local or (without allowPrivateHosts) private address is refused unasked", async () => {
  let asked = 0;
  const ask = () => {
    asked++;
    return { allow: true };
  };
  const overrides = (address: string) =>
    new Map([
      ["api.test", "127.0.0.1"],
      ["other.test", address],
    ]);
  const meta = proxy({ onHostRefused: ask, resolveOverrides: overrides("169.254.169.254") });
  const r = await get(meta.p, "other.test", false, { path: "/meta" });
  assert.equal(r.status, 403);
  assert.equal(r.headers["x-wheellock-blocked"], "private_address");
  const lan = proxy({
    onHostRefused: ask,
    allowPrivate: false,
    resolveOverrides: overrides("10.0.0.5"),
  });
  const l = await get(lan.p, "other.test", false, { path: "/lan" });
  assert.equal(l.status, 403);
  assert.equal(l.headers["x-wheellock-blocked"], "private_address");
  assert.equal(asked, 0, "nobody is asked about a request that could never be dialed");
  // With private hosts allowed, a LAN address can be approved: the question is asked.
  const ok = proxy({ onHostRefused: ask, resolveOverrides: overrides("127.0.0.1") });
  assert.equal((await get(ok.p, "other.test", false, { path: "/asked" })).status, 200);
  assert.equal(asked, 1);
});
