/**
 * What an intercepted HTTPS byte costs the host (issue 17, item 3): the TLS suites the proxy
 * settles on with the guest and with the upstream, and how much of a download it hands the
 * guest flow per event-loop turn. bench/intercept.ts measures the effect; these pin the
 * behaviour.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import type { InterceptUpstream } from "../../src/net/intercept/index.js";
import { aes128First, createCa, LeafCertificates } from "../../src/net/tls/index.js";
import { guestDial, upstreamFixture } from "./net-intercept-guest.js";

const ca = createCa();
const { up, proxy } = upstreamFixture(ca);

/** A guest TLS handshake through the proxy with the given suites; resolves to the socket. */
async function guestTls(p: InterceptUpstream, port: number, ciphers?: string): Promise<TLSSocket> {
  const [ip] = await p.resolveIpv4("api.test");
  const raw = await guestDial(p, ip ?? "", port);
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      socket: raw,
      servername: "api.test",
      ca: ca.certPem,
      ALPNProtocols: ["http/1.1"],
      ...(ciphers ? { ciphers } : {}),
    });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
  });
}

test("a guest offering OpenSSL's default order (AES-256 first) gets AES-128-GCM", async () => {
  const { p } = proxy();
  const s = await guestTls(p, up().httpsPort);
  try {
    assert.equal(s.getProtocol(), "TLSv1.3");
    assert.equal(s.getCipher().name, "TLS_AES_128_GCM_SHA256");
  } finally {
    s.destroy();
  }
});

test("a guest that puts ChaCha20 first keeps it; one offering AES-256 only still connects", async () => {
  const { p } = proxy();
  const chacha = await guestTls(
    p,
    up().httpsPort,
    "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256",
  );
  const only256 = await guestTls(p, up().httpsPort, "TLS_AES_256_GCM_SHA384");
  try {
    assert.equal(chacha.getCipher().name, "TLS_CHACHA20_POLY1305_SHA256");
    assert.equal(only256.getCipher().name, "TLS_AES_256_GCM_SHA384");
  } finally {
    chacha.destroy();
    only256.destroy();
  }
});

test("upstream, a server that follows the client's order gets AES-128-GCM from the proxy", async () => {
  // Node's own servers follow their own order (honorCipherOrder defaults to true); many
  // others (nginx's default) follow the client's, which is where the proxy's order counts.
  const upstreamCa = createCa();
  const leaves = new LeafCertificates(upstreamCa);
  const suites: string[] = [];
  const server = createHttpsServer(
    {
      SNICallback: (name, cb) => cb(null, leaves.contextFor(name.toLowerCase())),
      honorCipherOrder: false,
    },
    (_req, res) => res.end("ok"),
  );
  server.on("secureConnection", (s: TLSSocket) => suites.push(s.getCipher().name));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const { p } = proxy({ upstreamCaPems: [upstreamCa.certPem] });
  const s = await guestTls(p, port);
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { createConnection: () => s as never, host: "api.test", port, path: "/" },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      req.end();
    });
    assert.equal(status, 200);
    assert.deepEqual(suites, ["TLS_AES_128_GCM_SHA256"]);
  } finally {
    s.destroy();
    p.close();
    server.closeAllConnections();
    server.close();
  }
});

test("a download reaches the guest flow in batches of many TLS records, not 64 KiB at a time", async () => {
  // Node completes a write into a JS stream under TLS only on the next turn of the event loop,
  // so the guest TLS socket's write buffer is what one turn can carry. At 64 KiB the proxy
  // paused the response (and stopped reading the upstream) every 64 KiB.
  const { p } = proxy();
  const [ip] = await p.resolveIpv4("api.test");
  let largest = 0;
  const side = await guestDial(p, ip ?? "", up().httpsPort, undefined, undefined, (chunk) => {
    largest = Math.max(largest, chunk.length);
  });
  const total = 32 << 20;
  const s = tlsConnect({ socket: side, servername: "api.test", ca: ca.certPem });
  await new Promise((resolve, reject) => s.once("secureConnect", resolve).once("error", reject));
  try {
    const received = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          createConnection: () => s as never,
          host: "api.test",
          port: up().httpsPort,
          path: `/big?bytes=${total}`,
        },
        (res) => {
          let n = 0;
          res.on("data", (c: Buffer) => (n += c.length));
          res.on("end", () => resolve(n));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end();
    });
    assert.equal(received, total);
    assert.ok(largest > 256 * 1024, `largest write toward the guest: ${largest} bytes`);
  } finally {
    s.destroy();
  }
});

test("aes128First only moves TLS_AES_128_GCM_SHA256 to the front, and never adds it", () => {
  assert.equal(
    aes128First("TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:HIGH"),
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:HIGH",
  );
  assert.equal(aes128First("TLS_AES_256_GCM_SHA384:HIGH"), "TLS_AES_256_GCM_SHA384:HIGH");
});
