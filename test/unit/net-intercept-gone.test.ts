/**
 * A guest that goes away while its request is still with the HTTP policy (a hook, a secret
 * scan) must not leave an upstream request behind: the response's "close" has already fired
 * by the time the request would be forwarded, so nothing would ever tear it down, and each such
 * connection used to keep an upstream socket open for good (found by the http fuzz target: a
 * valid request followed by garbage closes the connection during the policy's await).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { PASS_THROUGH_POLICY } from "../../src/net/intercept/index.js";
import { createCa } from "../../src/net/tls/index.js";
import { guestDial, startUpstreams, testProxy, type Upstreams } from "./net-intercept-guest.js";

let up: Upstreams;
let recorder: Server;
let port = 0;
/** Upstream connections open now: nothing here is ever answered, so none should stay. */
let openConnections = 0;
const sockets = new Set<Duplex>();

before(async () => {
  up = await startUpstreams();
  recorder = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.end("ok"));
  });
  // Upgrades are accepted and kept open, as a WebSocket server would.
  recorder.on("upgrade", (_req, socket: Duplex) => {
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    );
    socket.pipe(socket);
  });
  recorder.on("connection", (socket) => {
    openConnections++;
    sockets.add(socket);
    socket.once("close", () => {
      openConnections--;
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => recorder.listen(0, "127.0.0.1", resolve));
  port = (recorder.address() as AddressInfo).port;
});
after(() => {
  up.close();
  for (const socket of sockets) socket.destroy();
  recorder.close();
});

/** One guest connection to the recorder that sends `payload`, half-closes and waits for the end. */
async function sendAndWaitClose(p: ReturnType<typeof testProxy>["p"], payload: string) {
  const [ip] = await p.resolveIpv4("plain.test");
  const socket = await guestDial(p, ip!, port);
  socket.on("data", () => undefined);
  const closed = new Promise((resolve) => socket.once("close", resolve));
  socket.end(payload);
  await closed;
}

const slowPolicy = {
  ...PASS_THROUGH_POLICY,
  onRequest: async (request: Parameters<typeof PASS_THROUGH_POLICY.onRequest>[0]) => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    return { action: "forward" as const, request };
  },
};

test("a guest gone while the policy runs leaves no upstream request open", async () => {
  const { p } = testProxy(up, createCa(), { allowedHosts: ["plain.test"], httpPolicy: slowPolicy });
  try {
    // A good request, then a malformed one: the proxy answers 400 and closes the connection
    // while the first request is still with the policy.
    for (let i = 0; i < 5; i++)
      await sendAndWaitClose(
        p,
        `GET /a HTTP/1.1\r\nHost: plain.test:${port}\r\n\r\nGET bad\r\n\r\n`,
      );
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(openConnections, 0, `${openConnections} upstream connections left open`);
  } finally {
    p.close();
  }
});

test("a pipelined request waiting its turn is torn down when the connection goes", async () => {
  // Two good requests and then garbage (or a request cut short by FIN): the 400 closes the
  // connection; the second response was queued behind the first, gets no "close" of its own
  // and its request never ends, so its upstream request used to stay open for good (found by
  // the http fuzz target).
  const { p } = testProxy(up, createCa(), { allowedHosts: ["plain.test"] });
  const request = (path: string) => `GET ${path} HTTP/1.1\r\nHost: plain.test:${port}\r\n\r\n`;
  try {
    for (const tail of ["XX YY\r\n\r\n", "GET /c HTT"])
      await sendAndWaitClose(p, request("/a") + request("/b") + tail);
    for (let waitedMs = 0; openConnections > 0 && waitedMs < 2000; waitedMs += 50)
      await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(openConnections, 0, `${openConnections} upstream connections left open`);
  } finally {
    p.close();
  }
});

test("a guest gone while the policy runs on its Upgrade leaves no upstream tunnel open", async () => {
  const { p } = testProxy(up, createCa(), { allowedHosts: ["plain.test"], httpPolicy: slowPolicy });
  try {
    for (let i = 0; i < 5; i++) {
      const [ip] = await p.resolveIpv4("plain.test");
      const socket = await guestDial(p, ip!, port);
      socket.on("data", () => undefined);
      socket.on("error", () => undefined);
      socket.write(
        `GET /ws HTTP/1.1\r\nHost: plain.test:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
      );
      // Gone (a reset) while the policy decides.
      await new Promise((resolve) => setTimeout(resolve, 10));
      socket.destroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(openConnections, 0, `${openConnections} upstream tunnels left open`);
  } finally {
    p.close();
  }
});
