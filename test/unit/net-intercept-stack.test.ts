/**
 * Intercept mode behind the real stack: the guest's DNS query gets a synthetic address from
 * the proxy, its TCP flow to that address reaches the proxy by name, and the answer comes back
 * in frames. Servers run on 127.0.0.1 and are reached through resolve overrides.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { buildDnsQuery, DNS_TYPE_A } from "../../src/net/dns-message.js";
import { NetworkStack } from "../../src/net/stack.js";
import { EgressPolicy } from "../../src/net/policy/index.js";
import {
  InterceptUpstream,
  PASS_THROUGH_POLICY,
  type NetworkEventInfo,
} from "../../src/net/intercept/index.js";
import { createCa } from "../../src/net/tls/index.js";
import type { TcpSegment } from "../../src/net/tcp-segment.js";
import { addressing, decode, guestFetch, guestUdp } from "./net-fake-guest.js";
import { startUpstreams, type Upstreams } from "./net-intercept-guest.js";

let up: Upstreams;
before(async () => {
  up = await startUpstreams();
});
after(() => up.close());

function interceptStack() {
  const events: NetworkEventInfo[] = [];
  const upstream = new InterceptUpstream({
    policy: new EgressPolicy({ allowedHosts: ["plain.test"], allowPrivateHosts: true }),
    httpPolicy: PASS_THROUGH_POLICY,
    ca: createCa(),
    resolveOverrides: new Map([["plain.test", "127.0.0.1"]]),
    resolve4: async () => assert.fail("no upstream DNS for the guest's queries"),
    onEvent: (e) => events.push(e),
  });
  const inbox: { deliver?: (s: TcpSegment) => void; udp?: (payload: Buffer) => void } = {};
  const stack = new NetworkStack({
    upstream,
    sendFrame: (frame) => {
      const copy = Buffer.from(frame);
      setImmediate(() => {
        const r = decode(copy);
        if (r.tcp) inbox.deliver?.(r.tcp);
        if (r.udp) inbox.udp?.(r.udp.payload);
      });
    },
  });
  return { stack, upstream, inbox, events };
}

async function lookup(
  stack: NetworkStack,
  inbox: { udp?: (payload: Buffer) => void },
  name: string,
): Promise<number> {
  const reply = new Promise<Buffer>((resolve) => (inbox.udp = resolve));
  stack.handleFrame(guestUdp(addressing.gatewayIp, 5353, 53, buildDnsQuery(7, name, DNS_TYPE_A)));
  const a = await reply;
  assert.equal(a.readUInt16BE(6), 1, "one answer");
  return a.readUInt32BE(a.length - 4);
}

test("a guest resolves a name and fetches over HTTP through the stack and the proxy", async () => {
  const { stack, upstream, inbox, events } = interceptStack();
  const ip = await lookup(stack, inbox, "plain.test");
  assert.equal(ip >>> 17, (198 * 256 + 18) >>> 1, "synthetic address from 198.18.0.0/15");
  const request = Buffer.from(
    `GET /via-stack HTTP/1.1\r\nHost: plain.test:${up.httpPort}\r\nConnection: close\r\n\r\n`,
  );
  const { data, reset } = await guestFetch(stack, inbox, up.httpPort, request, false, ip);
  assert.equal(reset, false);
  const text = data.toString();
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.match(text, /"url":"\/via-stack"/);
  assert.equal(events[0]?.url, `http://plain.test:${up.httpPort}/via-stack`);

  const other = await lookup(stack, inbox, "blocked.test");
  const blocked = await guestFetch(
    stack,
    inbox,
    80,
    Buffer.from("GET / HTTP/1.1\r\nHost: blocked.test\r\nConnection: close\r\n\r\n"),
    false,
    other,
  );
  assert.match(blocked.data.toString(), /^HTTP\/1\.1 403 /);
  // Both flows closed cleanly on both sides: nothing left in the stack.
  for (let i = 0; i < 100 && stack.stats.tcpFlows > 0; i++)
    await new Promise((r) => setTimeout(r, 10));
  assert.equal(stack.stats.tcpFlows, 0);
  stack.close();
  upstream.close();
});
