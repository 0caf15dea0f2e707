/**
 * Intercept mode end to end inside one process: a fake guest flow drives InterceptUpstream
 * against HTTP/HTTPS servers this test runs on 127.0.0.1 (reached through resolve overrides
 * and, where the test wants it, allowed private hosts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import type { Duplex } from "node:stream";
import { createServer as createTcpServer } from "node:net";
import { createCa } from "../../src/net/tls/index.js";
import {
  guestDial,
  guestRequest,
  guestSocket,
  listen,
  settle,
  upstreamFixture,
  type TestProxyOptions,
  type Upstreams,
} from "./net-intercept-guest.js";

const ca = createCa();
const fixture = upstreamFixture(ca);
const up = (): Upstreams => fixture.up();

function proxy(over: TestProxyOptions = {}) {
  return fixture.proxy({ allowedHosts: ["api.test", "plain.test", "echo.test"], ...over });
}

test("plain HTTP to an allowed host is forwarded, with one event", async () => {
  const { p, events } = proxy();
  const res = await guestRequest(p, {
    name: "plain.test",
    port: up().httpPort,
    tls: false,
    path: "/a?b=1",
  });
  assert.equal(res.status, 200);
  const seen = JSON.parse(res.body.toString());
  assert.equal(seen.url, "/a?b=1");
  await settle(events);
  assert.equal(events.length, 1);
  const e = events[0]!;
  assert.equal(e.method, "GET");
  assert.equal(e.url, `http://plain.test:${up().httpPort}/a?b=1`);
  assert.equal(e.scheme, "http");
  assert.equal(e.status, 200);
  assert.equal(e.blocked, false);
  assert.equal(e.bytesIn, res.body.length);
});

test("HTTPS is terminated with a leaf for the SNI and forwarded over verified TLS", async () => {
  const { p, events } = proxy();
  const res = await guestRequest(p, {
    name: "api.test",
    port: up().httpsPort,
    tls: true,
    caPem: ca.certPem,
    method: "POST",
    path: "/post",
    body: Buffer.from("payload"),
  });
  assert.equal(res.status, 200);
  const seen = JSON.parse(res.body.toString());
  assert.equal(seen.body, "payload");
  assert.equal(seen.method, "POST");
  await settle(events);
  assert.equal(events[0]?.url, `https://api.test:${up().httpsPort}/post`);
  assert.equal(events[0]?.bytesOut, 7);
});

test("a guest that does not trust the CA fails the handshake", async () => {
  const { p } = proxy();
  await assert.rejects(
    guestSocket(p, { name: "api.test", port: up().httpsPort, tls: true }),
    /self-signed|unable to (get|verify)/i,
  );
});

test("a host outside the allowlist gets 403 and an event with the reason", async () => {
  const { p, events } = proxy();
  for (const tls of [false, true]) {
    const res = await guestRequest(p, {
      name: "other.test",
      port: tls ? up().httpsPort : up().httpPort,
      tls,
      caPem: ca.certPem,
    });
    assert.equal(res.status, 403);
    assert.match(res.body.toString(), /Blocked by policy/);
  }
  await settle(events, 2);
  assert.deepEqual(
    events.map((e) => [e.scheme, e.blocked, e.code, e.host]),
    [
      ["http", true, "host_not_allowed", "other.test"],
      ["https", true, "host_not_allowed", "other.test"],
    ],
  );
  assert.match(events[0]?.reason ?? "", /other\.test/);
});

test("the upstream gets the Host that was checked, in canonical form", async () => {
  const { p } = proxy();
  const socket = await guestSocket(p, { name: "api.test", port: up().httpPort, tls: false });
  const reply = await sendAndReadAll(
    socket,
    `GET /h HTTP/1.1\r\nHost: API.Test.:${up().httpPort}\r\nConnection: close\r\n\r\n`,
  );
  assert.match(reply, /^HTTP\/1\.1 200 /, reply);
  // The route's JSON (chunked: take it from between the chunk-size lines).
  const body = JSON.parse(/\{.*\}/.exec(reply)?.[0] ?? "{}") as { headers: string[] };
  assert.deepEqual(body.headers.slice(0, 2), ["Host", `api.test:${up().httpPort}`]);
});

test("a Host that differs from the SNI is refused (domain fronting)", async () => {
  const { p, events } = proxy();
  const res = await guestRequest(p, {
    name: "api.test",
    port: up().httpsPort,
    tls: true,
    caPem: ca.certPem,
    headers: { host: `plain.test:${up().httpsPort}` },
  });
  assert.equal(res.status, 403);
  await settle(events);
  assert.equal(events[0]?.code, "sni_mismatch");
});

test("CONNECT is refused", async () => {
  const { p, events } = proxy();
  const socket = await guestSocket(p, { name: "plain.test", port: up().httpPort, tls: false });
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({
      createConnection: () => socket as never,
      method: "CONNECT",
      path: "api.test:443",
      headers: { host: "api.test:443" },
    });
    req.on("connect", (res) => resolve(res.statusCode ?? 0));
    req.on("response", (res) => resolve(res.statusCode ?? 0));
    req.on("error", reject);
    req.end();
  });
  assert.equal(status, 403);
  await settle(events);
  assert.equal(events[0]?.code, "connect_refused");
});

async function echoServer(): Promise<{ port: number; close(): void }> {
  const server = createTcpServer((s) => s.pipe(s));
  const port = await listen(server as never);
  return { port, close: () => server.close() };
}

/** Sends `request` (ending the guest's side when `end`), then collects everything until the proxy closes. */
function sendAndReadAll(socket: Duplex, request: string, end = false): Promise<string> {
  return new Promise<string>((resolve) => {
    let got = "";
    socket.on("data", (c: Buffer) => (got += c.toString()));
    socket.on("end", () => resolve(got));
    socket.on("close", () => resolve(got));
    socket.on("error", () => resolve(got));
    if (end) socket.end(request);
    else socket.write(request);
  });
}

function exchange(socket: Duplex, data: string): Promise<{ data: string; error?: string }> {
  return new Promise((resolve) => {
    let got = "";
    socket.on("data", (c: Buffer) => {
      got += c.toString();
      if (got.length >= data.length) {
        socket.destroy();
        resolve({ data: got });
      }
    });
    socket.on("error", (err) => resolve({ data: got, error: err.message }));
    socket.on("close", () => resolve({ data: got, error: "closed" }));
    socket.on("end", () => resolve({ data: got, error: "ended" }));
    socket.write(data);
  });
}

test("raw TCP is refused unless a rule allows host:port, then relayed", async () => {
  const echo = await echoServer();
  try {
    const refused = proxy();
    const [ip] = await refused.p.resolveIpv4("echo.test");
    const r1 = await exchange(await guestDial(refused.p, ip!, echo.port), "\x00\x01binary hello\n");
    assert.equal(r1.data, "");
    assert.ok(r1.error);
    await settle(refused.events);
    assert.equal(refused.events[0]?.code, "protocol_not_allowed");
    assert.equal(refused.events[0]?.host, "echo.test");

    const allowed = proxy({ rawTcpAllow: [`echo.test:${echo.port}`] });
    const [ip2] = await allowed.p.resolveIpv4("echo.test");
    const r2 = await exchange(
      await guestDial(allowed.p, ip2!, echo.port),
      "\x00\x01binary hello\n",
    );
    assert.equal(r2.data, "\x00\x01binary hello\n");
    await settle(allowed.events);
    assert.equal(allowed.events[0]?.scheme, "tcp");
    assert.equal(allowed.events[0]?.url, `tcp://echo.test:${echo.port}`);
    assert.equal(allowed.events[0]?.blocked, false);

    // The request budget counts raw relays too: past it, an allowed raw flow is refused.
    let budget = 1;
    const metered = proxy({
      rawTcpAllow: [`echo.test:${echo.port}`],
      refuseRawRelay: () => (budget-- > 0 ? undefined : "request budget spent"),
    });
    const [ip3] = await metered.p.resolveIpv4("echo.test");
    const r3 = await exchange(await guestDial(metered.p, ip3!, echo.port), "first\n");
    assert.equal(r3.data, "first\n");
    const r4 = await exchange(await guestDial(metered.p, ip3!, echo.port), "second\n");
    assert.equal(r4.data, "");
    await settle(metered.events, 2);
    // The relayed flow reports when it closes, maybe after the refusal.
    assert.deepEqual(metered.events.map((e) => [e.blocked, e.code, e.reason]).sort(), [
      [false, undefined, undefined],
      [true, "budget_exceeded", "request budget spent"],
    ]);
  } finally {
    echo.close();
  }
});

test("WebSocket upgrades pass after policy and echo both ways", async () => {
  const { p, events } = proxy();
  for (const tls of [false, true]) {
    const port = tls ? up().httpsPort : up().httpPort;
    const socket = await guestSocket(p, { name: "api.test", port, tls, caPem: ca.certPem });
    const tunnel = await new Promise<Duplex>((resolve, reject) => {
      const req = request({
        createConnection: () => socket as never,
        host: "api.test",
        port,
        headers: {
          connection: "Upgrade",
          upgrade: "websocket",
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          "sec-websocket-version": "13",
        },
      });
      req.on("upgrade", (res, s) =>
        res.statusCode === 101 ? resolve(s) : reject(new Error("no 101")),
      );
      req.on("response", (res) => reject(new Error(`status ${res.statusCode}`)));
      req.on("error", reject);
      req.end();
    });
    const r = await exchange(tunnel, "ping over the tunnel");
    assert.equal(r.data, "ping over the tunnel");
  }
  await settle(events, 2);
  assert.equal(events[0]?.status, 101);

  const denied = proxy({ allowedHosts: ["plain.test"] });
  const socket = await guestSocket(denied.p, { name: "api.test", port: up().httpPort, tls: false });
  const status = await new Promise<number>((resolve) => {
    const req = request({
      createConnection: () => socket as never,
      host: "api.test",
      port: up().httpPort,
      headers: { connection: "Upgrade", upgrade: "websocket" },
    });
    req.on("response", (res) => resolve(res.statusCode ?? 0));
    req.on("upgrade", () => resolve(101));
    req.end();
  });
  assert.equal(status, 403);
});

test("a name resolving to a private address is refused unless private hosts are allowed", async () => {
  const { p, events } = proxy({ allowPrivate: false, allowedHosts: ["private.test", "127.0.0.1"] });
  const res = await guestRequest(p, { name: "private.test", port: up().httpPort, tls: false });
  assert.equal(res.status, 403);
  const literal = await guestRequest(p, { name: "127.0.0.1", port: up().httpPort, tls: false });
  assert.equal(literal.status, 403);
  await settle(events, 2);
  assert.deepEqual(
    events.map((e) => e.code),
    ["private_address", "private_address"],
  );
});

test("an upstream certificate the host does not trust gives 502", async () => {
  const { p, events } = proxy({ upstreamCaPems: [] });
  const res = await guestRequest(p, {
    name: "api.test",
    port: up().httpsPort,
    tls: true,
    caPem: ca.certPem,
  });
  assert.equal(res.status, 502);
  await settle(events);
  assert.equal(events[0]?.code, "upstream_error");
  assert.match(events[0]?.reason ?? "", /certificate/i);
});

test("malformed HTTP gets 400 and the proxy keeps serving", async () => {
  const { p, events } = proxy();
  const [ip] = await p.resolveIpv4("plain.test");
  const socket = await guestDial(p, ip!, up().httpPort);
  const reply = await sendAndReadAll(
    socket,
    "GET / HTTP/1.1\r\nHost: plain.test\r\nBad Header Line\r\n\r\n",
  );
  assert.match(reply, /^HTTP\/1\.1 400/);
  await settle(events);
  assert.equal(events[0]?.code, "invalid_request");
  const ok = await guestRequest(p, { name: "plain.test", port: up().httpPort, tls: false });
  assert.equal(ok.status, 200);
});

test("a request that fails after its head is not reported as a 200", async () => {
  // Node accepts the head, then rejects the unknown transfer coding: the request never got a
  // response, and its event must not claim the server's default status.
  const { p, events } = proxy();
  const socket = await guestSocket(p, { name: "plain.test", port: up().httpPort, tls: false });
  const reply = await sendAndReadAll(
    socket,
    `POST /te HTTP/1.1\r\nHost: plain.test:${up().httpPort}\r\nTransfer-Encoding: identity\r\n\r\nabc`,
  );
  assert.match(reply, /^HTTP\/1\.1 400/);
  await settle(events);
  assert.ok(events.some((e) => e.code === "invalid_request"));
  assert.ok(
    events.every((e) => e.status !== 200),
    JSON.stringify(events),
  );
});

test("TLS garbage and a truncated ClientHello are closed without harm", async () => {
  const { p, events } = proxy({ sniffTimeoutMs: 200 });
  const [ip] = await p.resolveIpv4("api.test");
  // Handshake record header with a nonsense body.
  const garbage = Buffer.concat([
    Buffer.from([0x16, 0x03, 0x01, 0x00, 0x20]),
    Buffer.alloc(32, 0xff),
  ]);
  const r1 = await exchange(await guestDial(p, ip!, up().httpsPort), garbage.toString("latin1"));
  assert.equal(r1.data.length, 0);
  // A ClientHello cut short, then silence.
  const truncated = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
  const r2 = await exchange(await guestDial(p, ip!, up().httpsPort), truncated.toString("latin1"));
  assert.equal(r2.data.length, 0);
  await settle(events, 2);
  assert.ok(events.every((e) => e.blocked));
  const ok = await guestRequest(p, {
    name: "api.test",
    port: up().httpsPort,
    tls: true,
    caPem: ca.certPem,
  });
  assert.equal(ok.status, 200);
});

test("synthetic DNS: stable addresses, mapped back, no upstream lookups; UDP refused", async () => {
  let lookups = 0;
  const { p, events } = proxy({
    resolve4: async () => {
      lookups++;
      return ["127.0.0.1"];
    },
  });
  const [a1] = await p.resolveIpv4("Never-Allowed.example");
  const [a2] = await p.resolveIpv4("never-allowed.example.");
  const [b] = await p.resolveIpv4("other.example");
  assert.equal(a1, a2);
  assert.notEqual(a1, b);
  assert.match(a1!, /^198\.1[89]\./);
  assert.equal(lookups, 0);
  assert.deepEqual(await p.resolveIpv4("bad name"), []);
  assert.ok("denied" in p.connectTcp("198.19.200.200", 80, {} as never));
  const udp = p.openUdp(b!, 443, { onMessage: () => undefined, onError: () => undefined });
  assert.ok("denied" in udp);
  assert.equal(events[0]?.scheme, "udp");
  assert.equal(events[0]?.host, "other.example");
  assert.equal(events[0]?.code, "protocol_not_allowed");
});

test("an upgrade the upstream declines is relayed as an ordinary response", async () => {
  const { p } = proxy();
  const socket = await guestSocket(p, { name: "plain.test", port: up().httpPort, tls: false });
  const reply = await sendAndReadAll(
    socket,
    `GET /h2c HTTP/1.1\r\nHost: plain.test:${up().httpPort}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
  );
  assert.match(reply, /^HTTP\/1\.1 200 /);
  assert.match(reply, /"url":"\/h2c"/);
});

test("an upgrade request with a body is refused: its body would never reach the upstream", async () => {
  // A raw upstream shows every byte: the declared body must not leave the next request on
  // the kept-alive upstream connection to be read as that body (a desync).
  const seen: string[] = [];
  const raw = createTcpServer((s) =>
    s.on("data", (c: Buffer) => {
      seen.push(c.toString("latin1"));
      s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }),
  );
  const port = await listen(raw as never);
  try {
    const { p, events } = proxy();
    for (const framing of ["Content-Length: 5", "Transfer-Encoding: chunked"]) {
      const socket = await guestSocket(p, { name: "plain.test", port, tls: false });
      const reply = await sendAndReadAll(
        socket,
        `GET /up HTTP/1.1\r\nHost: plain.test:${port}\r\nConnection: Upgrade\r\nUpgrade: foo\r\n${framing}\r\n\r\nabcde`,
      );
      assert.match(reply, /^HTTP\/1\.1 400 /, framing);
    }
    assert.deepEqual(seen, []);
    await settle(events);
    assert.ok(events.every((e) => e.code === "invalid_request"));
  } finally {
    raw.close();
  }
});

test("a guest that half-closes after its request still gets the whole response", async () => {
  const { p } = proxy();
  const socket = await guestSocket(p, { name: "plain.test", port: up().httpPort, tls: false });
  const reply = await sendAndReadAll(
    socket,
    `GET /half HTTP/1.1\r\nHost: plain.test:${up().httpPort}\r\n\r\n`,
    true,
  );
  assert.match(reply, /^HTTP\/1\.1 200 /);
  assert.match(reply, /"url":"\/half"/);
});
