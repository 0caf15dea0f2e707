/**
 * Hostile guest: random frames, truncations and bit flips of valid frames, fed to the stack.
 * Nothing may throw, every frame is accounted for, and the stack still works afterwards.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildArpRequest } from "../../src/net/arp.js";
import { DNS_TYPE_A, buildDnsQuery } from "../../src/net/dns-message.js";
import { FrameDecoder } from "../../src/net/frame-codec.js";
import { TCP_ACK, TCP_FIN, TCP_SYN } from "../../src/net/tcp-segment.js";
import {
  GUEST_MAC,
  PUBLIC_IP,
  addressing,
  guestTcp,
  guestUdp,
  makeStack,
  sleep,
} from "./net-fake-guest.js";
import { mulberry32 } from "../helpers/seeded-random.js";

function seeds(): Buffer[] {
  return [
    buildArpRequest(GUEST_MAC, addressing.guestIp, addressing.gatewayIp),
    guestUdp(addressing.gatewayIp, 5000, 53, buildDnsQuery(7, "a.test", DNS_TYPE_A)),
    guestUdp(PUBLIC_IP, 5001, 9, Buffer.from("udp")),
    guestTcp(PUBLIC_IP, {
      srcPort: 1,
      dstPort: 80,
      seq: 1,
      ack: 0,
      flags: TCP_SYN,
      window: 1000,
      mss: 1400,
      windowScale: 7,
    }),
    guestTcp(PUBLIC_IP, {
      srcPort: 1,
      dstPort: 80,
      seq: 2,
      ack: 1,
      flags: TCP_ACK | TCP_FIN,
      window: 1000,
      payload: Buffer.from("GET /"),
    }),
  ];
}

test("random, truncated and mutated frames never throw and keep the stack usable", async () => {
  const rand = mulberry32(4242);
  const int = (n: number) => Math.floor(rand() * n);
  const { stack, upstream, take } = makeStack();
  upstream.names.set("a.test", ["93.184.216.34"]);
  const base = seeds();
  let fed = 0;
  for (let i = 0; i < 20_000; i++) {
    const kind = int(4);
    let frame: Buffer;
    if (kind === 0) frame = Buffer.from(Array.from({ length: int(120) }, () => int(256)));
    else {
      frame = Buffer.from(base[int(base.length)] as Buffer);
      if (kind === 1) frame = frame.subarray(0, int(frame.length + 1));
      else {
        for (let f = 0; f < 1 + int(4); f++) frame[int(frame.length)] = int(256);
        // Mutations that keep checksums intact reach deeper: hit only the payload sometimes.
        if (kind === 3) frame = Buffer.concat([frame, Buffer.alloc(int(64))]);
      }
    }
    stack.handleFrame(frame);
    fed++;
    // Connected upstreams reply with data at random, to exercise the send path too.
    for (const c of upstream.tcp) if (int(10) === 0) c.events.onConnect();
  }
  await sleep(20);
  assert.equal(stack.stats.framesIn, fed);
  take();
  // Still answers ARP after the storm.
  stack.handleFrame(buildArpRequest(GUEST_MAC, addressing.guestIp, addressing.gatewayIp));
  assert.equal(take().length, 1);
  stack.close();
});

test("the frame decoder survives random byte streams with bounded memory", () => {
  const rand = mulberry32(7);
  let frames = 0;
  const d = new FrameDecoder(() => frames++);
  for (let i = 0; i < 2000; i++) {
    const chunk = Buffer.from(Array.from({ length: Math.floor(rand() * 64) }, () => rand() * 256));
    d.push(chunk);
  }
  assert.ok(frames >= 0);
});

test("adversarial TCP with valid checksums: random flags, sequence numbers and windows", async () => {
  const rand = mulberry32(99);
  const int = (n: number) => Math.floor(rand() * n);
  const { stack, upstream, take } = makeStack({
    tcp: { initialRtoMs: 5, maxRtoMs: 10, maxRetransmits: 3 },
    maxTcpFlows: 8,
    bufferBudgetBytes: 256 * 1024,
  });
  const ports = [1, 2, 3, 4];
  for (let i = 0; i < 20_000; i++) {
    const flagsPool = [TCP_SYN, TCP_ACK, TCP_ACK | TCP_FIN, TCP_ACK | 0x08, 0x04, 0x3f, 0];
    const payloadBytes = int(5) === 0 ? int(3000) : 0;
    stack.handleFrame(
      guestTcp(PUBLIC_IP, {
        srcPort: ports[int(ports.length)] as number,
        dstPort: 80,
        seq: int(3) === 0 ? int(0x100000000) : 1 + int(4000),
        ack: int(0x100000000),
        flags: flagsPool[int(flagsPool.length)] as number,
        window: int(0x10000),
        ...(int(4) === 0 ? { mss: int(0x10000), windowScale: int(20) } : {}),
        ...(payloadBytes > 0 ? { payload: Buffer.alloc(payloadBytes, i & 0xff) } : {}),
      }),
    );
    for (const c of upstream.tcp) {
      const r = int(40);
      if (r === 0) c.events.onConnect();
      else if (r === 1 && !c.paused) c.events.onData(Buffer.alloc(int(100_000)));
      else if (r === 2) c.events.onEnd();
      else if (r === 3) c.flush();
      else if (r === 4 && int(10) === 0) c.events.onError(new Error("reset"));
    }
    if (i % 1000 === 0) take();
    assert.ok(stack.stats.tcpFlows <= 8);
    assert.ok(stack.stats.bufferedBytes <= 256 * 1024 + 8 * 100_000);
  }
  await sleep(100); // let retransmission timers run out
  take();
  stack.close();
  assert.equal(stack.stats.bufferedBytes, 0);
  assert.equal(stack.stats.tcpFlows, 0);
});
