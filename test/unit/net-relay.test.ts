/**
 * The stack with the real open-mode upstream, against servers this test runs on 127.0.0.1
 * (reached through the gateway address with private hosts allowed). No other address is used.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createSocket } from "node:dgram";
import { createServer, type AddressInfo, type Server } from "node:net";
import { NetworkStack } from "../../src/net/stack.js";
import { OpenUpstream } from "../../src/net/open-upstream.js";
import type { TcpSegment } from "../../src/net/tcp-segment.js";
import { addressing, decode, guestFetch, guestUdp } from "./net-fake-guest.js";

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
}

function makeRelayStack(allowPrivateHosts: boolean) {
  const inbox: { deliver?: (s: TcpSegment) => void } = {};
  const stack = new NetworkStack({
    upstream: new OpenUpstream({ allowPrivateHosts }),
    // The guest reacts asynchronously, as a real one would (no re-entrant calls).
    sendFrame: (frame) => {
      const copy = Buffer.from(frame);
      setImmediate(() => {
        const r = decode(copy);
        if (r.tcp) inbox.deliver?.(r.tcp);
      });
    },
  });
  return { stack, inbox };
}

test("open mode: a guest download from a 127.0.0.1 server arrives intact", async () => {
  const sizeBytes = 32 * 1024 * 1024;
  const body = Buffer.alloc(sizeBytes);
  for (let i = 0; i < sizeBytes; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i);
  const server = createServer((sock) => {
    sock.once("data", () => sock.end(body));
  });
  const port = await listen(server);
  const { stack, inbox } = makeRelayStack(true);
  const started = process.hrtime.bigint();
  const { data, reset } = await guestFetch(stack, inbox, port, Buffer.from("GET\n"));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  assert.equal(reset, false);
  assert.equal(data.length, sizeBytes);
  assert.equal(
    createHash("sha256").update(data).digest("hex"),
    createHash("sha256").update(body).digest("hex"),
  );
  // Not a pass/fail threshold; printed so regressions are visible in the test log.
  console.log(`# stack relay throughput: ${(sizeBytes / 1e6 / seconds).toFixed(0)} MB/s`);
  stack.close();
  server.close();
});

test("open mode: host loopback is refused unless private hosts are allowed", async () => {
  let connections = 0;
  const server = createServer((sock) => {
    connections++;
    sock.end("secret");
  });
  const port = await listen(server);
  const { stack, inbox } = makeRelayStack(false);
  const { data, reset } = await guestFetch(stack, inbox, port, Buffer.from("x"));
  assert.equal(reset, true);
  assert.equal(data.length, 0);
  assert.equal(connections, 0);
  assert.equal(stack.stats.tcpDenied, 1);
  stack.close();
  server.close();
});

test("open mode: a refused connection becomes a reset for the guest", async () => {
  const server = createServer();
  const port = await listen(server);
  server.close(); // nothing listens there now
  const { stack, inbox } = makeRelayStack(true);
  const { reset } = await guestFetch(stack, inbox, port, Buffer.from("x"));
  assert.equal(reset, true);
  assert.equal(stack.stats.tcpFlows, 0);
  stack.close();
});

test("open mode: private ranges are refused on the address dialed", () => {
  const up = new OpenUpstream();
  const events = {
    onConnect: () => assert.fail("must not connect"),
    onData: () => undefined,
    onEnd: () => undefined,
    onDrain: () => undefined,
    onError: () => undefined,
  };
  for (const ip of ["10.0.0.1", "169.254.169.254", "100.64.1.1", "127.0.0.1", "224.0.0.1"]) {
    assert.deepEqual(Object.keys(up.connectTcp(ip, 80, events)), ["denied"], ip);
    const udp = up.openUdp(ip, 53, { onMessage: () => undefined, onError: () => undefined });
    assert.ok("denied" in udp, ip);
  }
});

test("open mode: resolve overrides answer before the host resolver", async () => {
  let asked = 0;
  const up = new OpenUpstream({
    resolveOverrides: new Map([["Api.Test", "127.0.0.1"]]),
    resolve4: async () => {
      asked++;
      return [];
    },
  });
  assert.deepEqual(await up.resolveIpv4("api.test"), ["127.0.0.1"]);
  assert.deepEqual(await up.resolveIpv4("other.test"), []);
  assert.equal(asked, 1);
});

test("open mode: UDP is relayed to a 127.0.0.1 server and the reply comes back", async () => {
  const echo = createSocket("udp4");
  echo.on("message", (msg, from) =>
    echo.send(Buffer.concat([Buffer.from("echo:"), msg]), from.port, from.address),
  );
  await new Promise<void>((r) => echo.bind(0, "127.0.0.1", () => r()));
  const port = echo.address().port;
  const replies: Buffer[] = [];
  const stack = new NetworkStack({
    upstream: new OpenUpstream({ allowPrivateHosts: true }),
    sendFrame: (frame) => replies.push(Buffer.from(frame)),
  });
  stack.handleFrame(guestUdp(addressing.gatewayIp, 40000, port, Buffer.from("hi")));
  for (let i = 0; i < 100 && replies.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const udp = decode(replies[0] as Buffer).udp;
  assert.equal(udp?.payload.toString(), "echo:hi");
  assert.equal(udp?.srcPort, port);
  assert.equal(udp?.dstPort, 40000);
  stack.close();
  echo.close();
});

test(
  "open mode: the remote closing first does not end the guest's direction (half-close)",
  { timeout: 10_000 },
  async () => {
    let received = "";
    const server = createServer({ allowHalfOpen: true }, (sock) => {
      sock.end("bye first\n"); // the remote finishes sending at once
      sock.on("data", (d: Buffer) => (received += d.toString()));
      sock.on("end", () => sock.destroy());
    });
    const port = await listen(server);
    const { stack, inbox } = makeRelayStack(true);
    // The guest's request goes out after the remote's FIN has already been relayed.
    const { data, reset } = await guestFetch(stack, inbox, port, Buffer.from("late data"), true);
    for (let i = 0; i < 100 && received === ""; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(reset, false);
    assert.equal(data.toString(), "bye first\n");
    assert.equal(received, "late data");
    stack.close();
    server.close();
  },
);
