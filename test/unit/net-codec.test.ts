import { test } from "node:test";
import { randomBytes } from "node:crypto";
import assert from "node:assert/strict";
import { ByteQueue } from "../../src/net/byte-queue.js";
import { internetChecksum } from "../../src/net/checksum.js";
import { buildDnsQuery, parseDnsQuery } from "../../src/net/dns-message.js";
import { FrameDecoder, MAX_FRAME_BYTES, encodeFrame } from "../../src/net/frame-codec.js";
import { isPrivateOrSpecialAddress } from "../../src/net/ip-ranges.js";
import { parseIpv4Packet } from "../../src/net/ipv4.js";
import { PUBLIC_IP, guestUdp } from "./net-fake-guest.js";

test("frame decoder: frames split across chunks in any way come out whole", () => {
  const frames = [Buffer.from("a"), Buffer.alloc(70_000 - 64 * 100, 3), Buffer.from("xyz")];
  const stream = Buffer.concat(frames.map(encodeFrame));
  for (const step of [1, 3, 4, 5, 1000, stream.length]) {
    const got: Buffer[] = [];
    const d = new FrameDecoder((f) => got.push(Buffer.from(f)));
    for (let i = 0; i < stream.length; i += step) d.push(stream.subarray(i, i + step));
    assert.deepEqual(got, frames, `step ${step}`);
  }
});

test("frame decoder: an oversized length is skipped and the stream stays in sync", () => {
  const got: Buffer[] = [];
  const d = new FrameDecoder((f) => got.push(Buffer.from(f)));
  const huge = Buffer.alloc(4);
  huge.writeUInt32BE(MAX_FRAME_BYTES + 10);
  d.push(Buffer.concat([huge, Buffer.alloc(MAX_FRAME_BYTES + 10), encodeFrame(Buffer.from("ok"))]));
  assert.deepEqual(got.map(String), ["ok"]);
  assert.equal(d.droppedFrames, 1);
});

test("byte queue: reads at offsets across chunks, drops from the head", () => {
  const q = new ByteQueue();
  q.push(Buffer.from("hello "));
  q.push(Buffer.from("wide "));
  q.push(Buffer.from("world"));
  assert.equal(q.read(4, 5).toString(), "o wid");
  q.drop(3);
  assert.equal(q.lengthBytes, 13);
  assert.equal(q.read(0, 100).toString(), "lo wide world");
  q.drop(9);
  assert.equal(q.read(1, 2).toString(), "rl");
});

test("checksum: RFC 1071 example and odd lengths", () => {
  const words = Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(internetChecksum(words), ~0xddf2 & 0xffff);
  assert.equal(internetChecksum(Buffer.from([0xff])), ~0xff00 & 0xffff);
});

test("checksum: the word-at-a-time sum equals the RFC 1071 16-bit reference", () => {
  const reference = (b: Buffer): number => {
    let sum = 0;
    for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
    if (b.length % 2 === 1) sum += b.readUInt8(b.length - 1) << 8;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    return ~sum & 0xffff;
  };
  for (let n = 0; n < 600; n++) {
    const b = randomBytes(n < 500 ? n % 97 : 65_000 + n);
    assert.equal(internetChecksum(b), reference(b), `length ${b.length}`);
    assert.equal(
      internetChecksum(b, 3, b.length - 1 > 3 ? b.length - 1 : 3),
      reference(b.subarray(3, Math.max(3, b.length - 1))),
    );
  }
  const ones = Buffer.alloc(65_536, 0xff);
  assert.equal(internetChecksum(ones), reference(ones));
});

test("IPv4: fragments, bad checksums and lying lengths are rejected", () => {
  const ok = guestUdp(PUBLIC_IP, 1, 2, Buffer.from("data")).subarray(14);
  assert.equal(parseIpv4Packet(ok).ok, true);
  const frag = Buffer.from(ok);
  frag.writeUInt16BE(0x2000, 6); // more fragments
  const r1 = parseIpv4Packet(frag);
  assert.equal(r1.ok ? "ok" : r1.reason, "checksum");
  // Fix the checksum so the fragment check itself is exercised.
  frag.writeUInt16BE(0, 10);
  frag.writeUInt16BE(internetChecksum(frag, 0, 20), 10);
  const r2 = parseIpv4Packet(frag);
  assert.equal(r2.ok ? "ok" : r2.reason, "fragment");
  const long = Buffer.from(ok);
  long.writeUInt16BE(ok.length + 1, 2);
  long.writeUInt16BE(0, 10);
  long.writeUInt16BE(internetChecksum(long, 0, 20), 10);
  const r3 = parseIpv4Packet(long);
  assert.equal(r3.ok ? "ok" : r3.reason, "length");
});

test("private and special-purpose ranges", () => {
  const blocked = [
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "127.0.0.1",
    "127.8.9.10",
    "169.254.169.254",
    "100.64.0.1",
    "100.127.255.255",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "192.0.2.1",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:8.8.8.8",
    "fc00::1",
    "fd12::1",
    "fe80::1",
    "ff02::1",
    "not-an-ip",
    "",
  ];
  for (const a of blocked) assert.equal(isPrivateOrSpecialAddress(a), true, a);
  const open = [
    "8.8.8.8",
    "93.184.216.34",
    "172.32.0.1",
    "100.128.0.1",
    "1.1.1.1",
    "2606:4700::1111",
  ];
  for (const a of open) assert.equal(isPrivateOrSpecialAddress(a), false, a);
});

test("DNS parser: rejects responses, multiple questions, compression and long names", () => {
  const q = buildDnsQuery(1, "a.example", 1);
  assert.equal(parseDnsQuery(q).ok, true);
  const resp = Buffer.from(q);
  resp.writeUInt16BE(0x8100, 2);
  assert.equal(parseDnsQuery(resp).ok, false);
  const two = Buffer.from(q);
  two.writeUInt16BE(2, 4);
  assert.equal(parseDnsQuery(two).ok, false);
  const ptr = Buffer.concat([q.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
  assert.equal(parseDnsQuery(ptr).ok, false);
  const long = buildDnsQuery(1, Array.from({ length: 8 }, () => "a".repeat(40)).join("."), 1);
  assert.equal(parseDnsQuery(long).ok, false);
  for (let n = 0; n < q.length; n++) assert.equal(parseDnsQuery(q.subarray(0, n)).ok, false);
});
