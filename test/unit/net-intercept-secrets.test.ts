/**
 * Secrets through the whole proxy (issue 19, finding 3), against upstream servers on
 * 127.0.0.1 that record every request they receive: the value crosses only TLS unless the
 * secret allows plain HTTP, lands only in the headers the secret allows, and a blocked request
 * reaches no upstream at all. Also the interactions: keep-alive across hosts, WebSocket
 * upgrades, redirects (never followed).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import type { Duplex } from "node:stream";
import type { InterceptUpstream } from "../../src/net/intercept/index.js";
import { createHttpPolicy, type SecretSpec } from "../../src/net/http-policy/index.js";
import { createCa } from "../../src/net/tls/index.js";
import { guestRequest, guestSocket, settle, upstreamFixture } from "./net-intercept-guest.js";

const VALUE = "real-value-5e1d0c9b";
const ca = createCa();
const { up, proxy } = upstreamFixture(ca);

/** A proxy with one secret TOKEN; `ph` is its placeholder. */
function withSecret(over: Partial<SecretSpec> = {}) {
  const policy = createHttpPolicy({
    secrets: [
      {
        name: "TOKEN",
        value: VALUE,
        hosts: [`api.test:${up().httpPort}`, `api.test:${up().httpsPort}`],
        ...over,
      },
    ],
  });
  const made = proxy({ httpPolicy: policy, allowedHosts: ["api.test", "plain.test"] });
  return { ...made, ph: policy.placeholders().TOKEN as string };
}

/** What the upstreams received for `path`, as one string per request. */
const received = (path: string) =>
  up()
    .seen.filter((r) => r.url.startsWith(path))
    .map((r) => JSON.stringify(r));

const send = (p: InterceptUpstream, tls: boolean, path: string, headers: Record<string, string>) =>
  guestRequest(p, {
    name: "api.test",
    port: tls ? up().httpsPort : up().httpPort,
    tls,
    caPem: ca.certPem,
    path,
    headers,
  });

test("plain HTTP to the secret's host and port: 403, and no upstream sees the value or the request", async () => {
  const { p, events, ph } = withSecret();
  const res = await send(p, false, "/plain-secret", { authorization: `Bearer ${ph}` });
  assert.equal(res.status, 403);
  assert.equal(res.headers["x-wheellock-blocked"], "secret_requires_tls");
  assert.deepEqual(received("/plain-secret"), []);
  await settle(events);
  assert.equal(events[0]?.code, "secret_requires_tls");
  assert.match(events[0]?.reason ?? "", /TOKEN is only sent over TLS/);
  assert.ok(!JSON.stringify(events).includes(VALUE));
});

test("over TLS the value reaches the upstream in Authorization; an unlisted header is blocked", async () => {
  const { p, events, ph } = withSecret({ headers: ["X-Api-Key"] });
  const ok = await send(p, true, "/tls-secret", {
    authorization: `Bearer ${ph}`,
    "x-api-key": ph,
  });
  assert.equal(ok.status, 200);
  const [seen] = up().seen.filter((r) => r.url === "/tls-secret");
  assert.equal(seen?.tls, true);
  assert.ok(seen?.headers.includes(`Bearer ${VALUE}`), JSON.stringify(seen));
  assert.ok(seen?.headers.includes(VALUE), "listed header");
  const stray = await send(p, true, "/tls-stray", { "x-other": ph });
  assert.equal(stray.status, 403);
  assert.deepEqual(received("/tls-stray"), []);
  await settle(events, 2);
  assert.equal(events[1]?.code, "secret_leak");
  assert.match(events[1]?.reason ?? "", /header X-Other/i);
});

test("allowHttp: the value crosses plain HTTP when the secret says so", async () => {
  const { p, ph } = withSecret({ allowHttp: true });
  const res = await send(p, false, "/http-allowed", { authorization: `Bearer ${ph}` });
  assert.equal(res.status, 200);
  const [seen] = up().seen.filter((r) => r.url === "/http-allowed");
  assert.equal(seen?.tls, false);
  assert.ok(seen?.headers.includes(`Bearer ${VALUE}`), JSON.stringify(seen));
});

/** Writes `raw` on the guest socket and collects everything until the proxy closes it. */
function exchangeRaw(socket: Duplex, raw: string): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    socket.on("data", (c: Buffer) => (got += c.toString()));
    for (const e of ["end", "close", "error"]) socket.on(e, () => resolve(got));
    socket.write(raw);
  });
}

test("keep-alive: one guest connection, two hosts: the value goes only to the secret's host", async () => {
  const { p, ph } = withSecret({ allowHttp: true });
  const socket = await guestSocket(p, { name: "api.test", port: up().httpPort, tls: false });
  const head = (host: string, path: string, last: boolean) =>
    `GET ${path} HTTP/1.1\r\nHost: ${host}:${up().httpPort}\r\nAuthorization: Bearer ${ph}\r\n` +
    `Connection: ${last ? "close" : "keep-alive"}\r\n\r\n`;
  const reply = await exchangeRaw(
    socket,
    head("api.test", "/ka-first", false) + head("plain.test", "/ka-second", true),
  );
  assert.deepEqual(
    [...reply.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1]),
    ["200", "403"],
    reply,
  );
  assert.equal(received("/ka-first").length, 1);
  assert.ok(received("/ka-first")[0]?.includes(VALUE));
  assert.deepEqual(received("/ka-second"), []);
});

/** A WebSocket upgrade from the guest; resolves to the status the guest sees. */
async function upgrade(p: InterceptUpstream, tls: boolean, path: string, auth: string) {
  const port = tls ? up().httpsPort : up().httpPort;
  const socket = await guestSocket(p, { name: "api.test", port, tls, caPem: ca.certPem });
  return new Promise<number>((resolve, reject) => {
    const req = request({
      createConnection: () => socket as never,
      host: "api.test",
      port,
      path,
      headers: {
        authorization: auth,
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    req.on("upgrade", (res, s: Duplex) => {
      s.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on("response", (res) => resolve(res.statusCode ?? 0));
    req.on("error", reject);
    req.end();
  });
}

test("WebSocket upgrades follow the same rules: refused over plain HTTP, value over TLS", async () => {
  const { p, ph } = withSecret();
  assert.equal(await upgrade(p, false, "/ws-plain", `Bearer ${ph}`), 403);
  assert.deepEqual(received("/ws-plain"), []);
  assert.equal(await upgrade(p, true, "/ws-tls", `Bearer ${ph}`), 101);
  assert.ok(received("/ws-tls")[0]?.includes(`Bearer ${VALUE}`));
});

test("a redirect is handed to the guest, never followed by the proxy", async () => {
  const { p, ph } = withSecret();
  const to = `http://plain.test:${up().httpPort}/redirected`;
  const res = await send(p, true, `/redirect?to=${encodeURIComponent(to)}`, {
    authorization: `Bearer ${ph}`,
  });
  assert.equal(res.status, 302);
  assert.equal(res.headers.location, to);
  assert.equal(received("/redirect?").length, 1);
  assert.deepEqual(received("/redirected"), []);
  // The guest following it with the placeholder is a new request, judged on its own.
  const followed = await guestRequest(p, {
    name: "plain.test",
    port: up().httpPort,
    tls: false,
    path: "/redirected",
    headers: { authorization: `Bearer ${ph}` },
  });
  assert.equal(followed.status, 403);
  assert.deepEqual(received("/redirected"), []);
});
