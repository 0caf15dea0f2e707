/**
 * The SYN stamp (src/net/syn-stamp.ts, docs/PROTOCOL.md): read from a guest's opening SYN only
 * when exactly one well-formed one is there, handed to the upstream with the flow it opened,
 * and never replaced by a later SYN on the same 4-tuple.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseIpv4 } from "../../src/net/addresses.js";
import {
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  buildTcpFrame,
  type TcpOutSegment,
} from "../../src/net/tcp-segment.js";
import {
  PUBLIC_IP,
  addressing,
  decode,
  guestHeader,
  guestTcp,
  makeStack,
  type FakeTcp,
} from "./net-fake-guest.js";

const PID = 4242;
const CGROUP = 0x1122_3344_5566_7788n;
const STAMP = { pid: PID, cgroup: CGROUP };

/** The option as the agent's BPF program writes it; `length` and `exid` to spoil it. */
function stampOption(
  pid = PID,
  cgroup = CGROUP,
  { length = 16, exid = 0x574c }: { length?: number; exid?: number } = {},
): Buffer {
  const b = Buffer.alloc(Math.ceil(length / 4) * 4, 1); // NOPs after a short one
  b.writeUInt8(254, 0);
  b.writeUInt8(length, 1);
  b.writeUInt16BE(exid, 2);
  if (length >= 8) b.writeUInt32LE(pid, 4);
  if (length >= 16) b.writeBigUInt64LE(cgroup, 8);
  return b;
}

const syn = (over: Partial<TcpOutSegment> = {}): TcpOutSegment => ({
  srcPort: 40000,
  dstPort: 443,
  seq: 1000,
  ack: 0,
  flags: TCP_SYN,
  window: 65535,
  mss: 1460,
  windowScale: 7,
  ...over,
});

/** What the host parses out of a guest segment. */
const parsed = (seg: TcpOutSegment) => decode(guestTcp(PUBLIC_IP, seg)).tcp!;

test("a SYN's stamp is read (pid and cgroup little-endian) next to the usual options", () => {
  const seg = parsed(syn({ options: stampOption() }));
  assert.deepEqual(seg.stamp, STAMP);
  assert.equal(seg.mss, 1460);
  assert.equal(seg.windowScale, 7);
  const alone = parsed(syn({ mss: undefined, windowScale: undefined, options: stampOption() }));
  assert.deepEqual(alone.stamp, STAMP);
  assert.equal(parsed(syn()).stamp, undefined, "no option, no stamp");
});

test("a stamp of the wrong length, or in a list that breaks off, is no stamp", () => {
  for (const length of [4, 8, 12, 20])
    assert.equal(parsed(syn({ options: stampOption(PID, CGROUP, { length }) })).stamp, undefined);
  // A well-formed stamp, then an option whose length runs past the header.
  const overrun = Buffer.concat([stampOption(), Buffer.from([8, 10, 0, 0])]);
  const seg = parsed(syn({ options: overrun }));
  assert.equal(seg.stamp, undefined);
  assert.equal(seg.mss, 1460, "the options before it still count");
});

test("another experiment's option is not a stamp, and does not spoil one", () => {
  const other = stampOption(PID, CGROUP, { exid: 0xf989 }); // RFC 7413's experimental ExID
  assert.equal(parsed(syn({ options: other })).stamp, undefined);
  const notExperimental = Buffer.from(stampOption());
  notExperimental.writeUInt8(253, 0);
  assert.equal(parsed(syn({ options: notExperimental })).stamp, undefined);
  assert.deepEqual(parsed(syn({ options: Buffer.concat([other, stampOption()]) })).stamp, STAMP);
});

test("two stamps in one SYN are none, even when they agree", () => {
  const twice = Buffer.concat([stampOption(), stampOption(7, 7n)]);
  assert.equal(
    parsed(syn({ mss: undefined, windowScale: undefined, options: twice })).stamp,
    undefined,
  );
  const same = Buffer.concat([stampOption(), stampOption()]);
  assert.equal(
    parsed(syn({ mss: undefined, windowScale: undefined, options: same })).stamp,
    undefined,
  );
});

test("only an opening SYN carries a stamp: not a SYN-ACK, nor any segment without SYN", () => {
  assert.equal(parsed(syn({ flags: TCP_SYN | TCP_ACK, options: stampOption() })).stamp, undefined);
  for (const flags of [TCP_ACK, TCP_FIN, TCP_RST, 0]) {
    const seg = syn({ flags, mss: undefined, windowScale: undefined, options: stampOption() });
    assert.equal(parsed(seg).stamp, undefined, `flags ${flags}`);
  }
});

test("the stack hands the SYN's stamp to the upstream with the flow it opens", () => {
  const { stack, upstream } = makeStack();
  stack.handleFrame(guestTcp(PUBLIC_IP, syn({ options: stampOption() })));
  stack.handleFrame(guestTcp(PUBLIC_IP, syn({ srcPort: 40001 })));
  assert.deepEqual(
    upstream.tcp.map((c) => c.from),
    [{ srcPort: 40000, stamp: STAMP }, { srcPort: 40001 }],
  );
});

test("a later SYN on the same 4-tuple never replaces the stamp of the one that opened it", () => {
  const { stack, upstream, take } = makeStack();
  stack.handleFrame(guestTcp(PUBLIC_IP, syn({ options: stampOption() })));
  const conn = upstream.tcp[0] as FakeTcp;
  const forged = stampOption(1, 99n);
  // While the dial is pending, then once the handshake is under way: a retransmission (same
  // sequence number) and a different SYN on the same 4-tuple, each with another stamp.
  stack.handleFrame(guestTcp(PUBLIC_IP, syn({ options: forged })));
  conn.events.onConnect();
  stack.handleFrame(guestTcp(PUBLIC_IP, syn({ options: forged })));
  stack.handleFrame(guestTcp(PUBLIC_IP, syn({ seq: 5000, options: forged })));
  assert.equal(upstream.tcp.length, 1, "no second flow");
  assert.deepEqual(conn.from, { srcPort: 40000, stamp: STAMP });
  assert.equal(stack.stats.tcpFlows, 1);
  // The retransmission is answered with the same SYN-ACK; the other SYN with nothing.
  const synAcks = take().filter((r) => r.tcp && r.tcp.flags === (TCP_SYN | TCP_ACK));
  assert.equal(synAcks.length, 2);
  assert.equal(synAcks[1]!.tcp!.ack, 1001);
});

test("a SYN from another source address makes no flow (well-formed checksums and all)", () => {
  const { stack, upstream, out } = makeStack();
  const spoofed = parseIpv4("10.0.2.99") ?? 0;
  assert.notEqual(spoofed, addressing.guestIp);
  const frame = buildTcpFrame(
    { ...guestHeader(PUBLIC_IP), srcIp: spoofed },
    syn({ options: stampOption() }),
  );
  assert.ok(decode(frame).tcp, "the frame itself is valid");
  stack.handleFrame(frame);
  assert.equal(upstream.tcp.length, 0);
  assert.equal(out.length, 0, "not even a reset");
  assert.equal(stack.stats.framesDropped, 1);
});
