import { test } from "node:test";
import assert from "node:assert/strict";
import { parseIpv4 } from "../../src/net/addresses.js";
import { buildArpRequest } from "../../src/net/arp.js";
import { internetChecksum } from "../../src/net/checksum.js";
import {
  DNS_TYPE_A,
  DNS_TYPE_AAAA,
  RCODE_NXDOMAIN,
  buildDnsQuery,
} from "../../src/net/dns-message.js";
import { parseEthernet } from "../../src/net/ethernet.js";
import { allocIpv4Frame, IPV4_PAYLOAD_OFFSET, PROTO_ICMP } from "../../src/net/ipv4.js";
import { buildUdpFrame } from "../../src/net/udp.js";
import {
  GUEST_MAC,
  PUBLIC_IP,
  addressing,
  guestHeader,
  guestUdp,
  makeStack,
  sleep,
} from "./net-fake-guest.js";

test("ARP: answers for the gateway only", () => {
  const { stack, out } = makeStack();
  stack.handleFrame(buildArpRequest(GUEST_MAC, addressing.guestIp, addressing.gatewayIp));
  assert.equal(out.length, 1);
  const eth = parseEthernet(out[0] as Buffer);
  assert.ok(eth);
  assert.deepEqual(eth.dstMac, GUEST_MAC);
  assert.equal(eth.payload.readUInt16BE(6), 2); // reply
  assert.deepEqual(eth.payload.subarray(8, 14), addressing.gatewayMac);
  assert.equal(eth.payload.readUInt32BE(14), addressing.gatewayIp);
  stack.handleFrame(buildArpRequest(GUEST_MAC, addressing.guestIp, PUBLIC_IP));
  assert.equal(out.length, 1);
});

function echoRequest(dstIp: number, id: number, payload: Buffer): Buffer {
  const frame = allocIpv4Frame({ ...guestHeader(dstIp), protocol: PROTO_ICMP }, 8 + payload.length);
  const p = IPV4_PAYLOAD_OFFSET;
  frame.writeUInt8(8, p);
  frame.writeUInt8(0, p + 1);
  frame.writeUInt16BE(0, p + 2);
  frame.writeUInt16BE(id, p + 4);
  frame.writeUInt16BE(1, p + 6);
  payload.copy(frame, p + 8);
  frame.writeUInt16BE(internetChecksum(frame, p), p + 2);
  return frame;
}

test("ICMP: echo to the gateway is answered with the same id and data; elsewhere dropped", () => {
  const { stack, out } = makeStack();
  stack.handleFrame(echoRequest(addressing.gatewayIp, 77, Buffer.from("ping!")));
  assert.equal(out.length, 1);
  const reply = out[0] as Buffer;
  const p = IPV4_PAYLOAD_OFFSET;
  assert.equal(reply.readUInt8(p), 0);
  assert.equal(reply.readUInt16BE(p + 4), 77);
  assert.equal(reply.subarray(p + 8).toString(), "ping!");
  assert.equal(internetChecksum(reply, p), 0);
  assert.equal(internetChecksum(reply, 14, 34), 0);
  stack.handleFrame(echoRequest(PUBLIC_IP, 1, Buffer.alloc(4)));
  assert.equal(out.length, 1);
});

test("frames from another source address are dropped (no spoofed flows)", () => {
  const { stack, out, upstream } = makeStack();
  // Checksums made for the spoofed address: only the source check can drop it (TCP:
  // net-syn-stamp.test.ts).
  const spoofed = { ...guestHeader(PUBLIC_IP), srcIp: parseIpv4("10.0.2.99") ?? 0 };
  const frame = buildUdpFrame(spoofed, 4000, 5000, Buffer.from("x"));
  stack.handleFrame(frame);
  assert.equal(out.length, 0);
  assert.equal(upstream.udp.length, 0);
  assert.equal(stack.stats.framesDropped, 1);
});

test("DNS: A answered from the resolver, AAAA empty, unknown name NXDOMAIN", async () => {
  const { stack, upstream, take } = makeStack();
  upstream.names.set("example.test", ["93.184.216.34", "127.0.0.1"]);
  stack.handleFrame(
    guestUdp(addressing.gatewayIp, 5353, 53, buildDnsQuery(0x1234, "Example.TEST", DNS_TYPE_A)),
  );
  stack.handleFrame(
    guestUdp(addressing.gatewayIp, 5354, 53, buildDnsQuery(2, "example.test", DNS_TYPE_AAAA)),
  );
  stack.handleFrame(guestUdp(addressing.gatewayIp, 5355, 53, buildDnsQuery(3, "nope.test", 1)));
  await sleep(10);
  const replies = take();
  assert.equal(replies.length, 3);
  const byPort = new Map(replies.map((r) => [r.udp?.dstPort, r.udp?.payload ?? Buffer.alloc(0)]));
  const a = byPort.get(5353) as Buffer;
  assert.equal(a.readUInt16BE(0), 0x1234);
  assert.equal(a.readUInt16BE(6), 2);
  const answerIps = [a.readUInt32BE(a.length - 16 - 4), a.readUInt32BE(a.length - 4)];
  // Host loopback is shown to the guest as the gateway (its 127.0.0.1 is itself).
  assert.deepEqual(answerIps, [PUBLIC_IP, addressing.gatewayIp]);
  const aaaa = byPort.get(5354) as Buffer;
  assert.equal(aaaa.readUInt16BE(6), 0);
  assert.equal(aaaa.readUInt16BE(2) & 0xf, 0);
  assert.equal((byPort.get(5355) as Buffer).readUInt16BE(2) & 0xf, RCODE_NXDOMAIN);
  for (const r of replies) assert.equal(r.srcIp, addressing.gatewayIp);
});

test("DNS: names with control characters are refused, never resolved", async () => {
  const { stack, upstream, take } = makeStack();
  let asked = 0;
  upstream.resolveIpv4 = async () => {
    asked++;
    return [];
  };
  const q = buildDnsQuery(9, "evil\u0000.allowed.test", DNS_TYPE_A);
  stack.handleFrame(guestUdp(addressing.gatewayIp, 5000, 53, q));
  await sleep(5);
  const [reply] = take();
  assert.equal((reply?.udp?.payload as Buffer).readUInt16BE(2) & 0xf, 5);
  assert.equal(asked, 0);
});

test("UDP: relayed per flow, replies come back from the destination", () => {
  const { stack, upstream, take } = makeStack();
  stack.handleFrame(guestUdp(PUBLIC_IP, 40000, 123, Buffer.from("ntp?")));
  stack.handleFrame(guestUdp(PUBLIC_IP, 40000, 123, Buffer.from("again")));
  assert.equal(upstream.udp.length, 1);
  const flow = upstream.udp[0];
  assert.ok(flow);
  assert.equal(flow.ip, "93.184.216.34");
  assert.deepEqual(flow.sent.map(String), ["ntp?", "again"]);
  flow.events.onMessage(Buffer.from("time"));
  const [reply] = take();
  assert.equal(reply?.srcIp, PUBLIC_IP);
  assert.equal(reply?.udp?.srcPort, 123);
  assert.equal(reply?.udp?.dstPort, 40000);
  assert.equal(reply?.udp?.payload.toString(), "time");
  stack.close();
});

test("UDP: a denied destination is counted and gets nothing", () => {
  const { stack, upstream, out } = makeStack();
  upstream.deny = true;
  stack.handleFrame(guestUdp(PUBLIC_IP, 40000, 9999, Buffer.from("x")));
  assert.equal(out.length, 0);
  assert.equal(stack.stats.udpDenied, 1);
});

test("UDP: the number of flows is bounded", () => {
  const { stack, upstream } = makeStack({ udp: { maxFlows: 4 } });
  for (let port = 1000; port < 1010; port++)
    stack.handleFrame(guestUdp(PUBLIC_IP, port, 7, Buffer.from("x")));
  assert.equal(upstream.udp.length, 4);
  stack.close();
});
