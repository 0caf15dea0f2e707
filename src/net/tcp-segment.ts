import { finishChecksum, pseudoHeaderSum, sumWords } from "./checksum.js";
import { IPV4_PAYLOAD_OFFSET, PROTO_TCP, allocIpv4Frame, type Ipv4FrameHeader } from "./ipv4.js";
import { StampReader, type SynStamp } from "./syn-stamp.js";

export const TCP_HEADER_BYTES = 20;
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  /** Raw window field; the connection applies the peer's scale. */
  window: number;
  /** MSS option, SYN only. */
  mss?: number;
  /** Window-scale shift, SYN only (capped at 14 per RFC 7323). */
  windowScale?: number;
  /** Who opened the connection (syn-stamp.ts): an opening SYN (no ACK) only. */
  stamp?: SynStamp;
  payload: Buffer;
}

function parseOptions(options: Buffer, seg: TcpSegment): void {
  const stamps = (seg.flags & TCP_ACK) === 0 ? new StampReader() : undefined;
  let i = 0;
  while (i < options.length) {
    const kind = options.readUInt8(i);
    if (kind === 0) break; // end of list
    if (kind === 1) {
      i += 1;
      continue;
    }
    const len = i + 1 < options.length ? options.readUInt8(i + 1) : 0;
    if (len < 2 || i + len > options.length) {
      stamps?.malformed(); // ignore the rest
      break;
    }
    if (kind === 2 && len === 4) seg.mss = options.readUInt16BE(i + 2);
    if (kind === 3 && len === 3) seg.windowScale = Math.min(options.readUInt8(i + 2), 14);
    stamps?.option(options, { kind, length: len, offset: i });
    i += len;
  }
  const stamp = stamps?.stamp;
  if (stamp !== undefined) seg.stamp = stamp;
}

export function parseTcp(segment: Buffer, srcIp: number, dstIp: number): TcpSegment | undefined {
  if (segment.length < TCP_HEADER_BYTES) return undefined;
  const headerBytes = (segment.readUInt8(12) >> 4) * 4;
  if (headerBytes < TCP_HEADER_BYTES || headerBytes > segment.length) return undefined;
  const sum = sumWords(
    segment,
    0,
    segment.length,
    pseudoHeaderSum(srcIp, dstIp, PROTO_TCP, segment.length),
  );
  if (finishChecksum(sum) !== 0) return undefined;
  const seg: TcpSegment = {
    srcPort: segment.readUInt16BE(0),
    dstPort: segment.readUInt16BE(2),
    seq: segment.readUInt32BE(4),
    ack: segment.readUInt32BE(8),
    flags: segment.readUInt8(13) & 0x3f,
    window: segment.readUInt16BE(14),
    payload: segment.subarray(headerBytes),
  };
  if (seg.flags & TCP_SYN) parseOptions(segment.subarray(TCP_HEADER_BYTES, headerBytes), seg);
  return seg;
}

export interface TcpOutSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  mss?: number;
  windowScale?: number;
  /**
   * More options, as they go on the wire (a multiple of 4 bytes): the host sends none; tests
   * build the guest's stamped SYNs with it.
   */
  options?: Buffer;
  payload?: Buffer;
}

export function buildTcpFrame(h: Omit<Ipv4FrameHeader, "protocol">, s: TcpOutSegment): Buffer {
  const extra = s.options ?? Buffer.alloc(0);
  const optionBytes =
    (s.mss !== undefined ? 4 : 0) + (s.windowScale !== undefined ? 4 : 0) + extra.length;
  if (extra.length % 4 !== 0 || optionBytes > 40)
    throw new RangeError("TCP options must fill whole 32-bit words, 40 bytes at most");
  const headerBytes = TCP_HEADER_BYTES + optionBytes;
  const payload = s.payload ?? Buffer.alloc(0);
  const lengthBytes = headerBytes + payload.length;
  const frame = allocIpv4Frame({ ...h, protocol: PROTO_TCP }, lengthBytes);
  const p = IPV4_PAYLOAD_OFFSET;
  frame.writeUInt16BE(s.srcPort, p);
  frame.writeUInt16BE(s.dstPort, p + 2);
  frame.writeUInt32BE(s.seq >>> 0, p + 4);
  frame.writeUInt32BE(s.ack >>> 0, p + 8);
  frame.writeUInt8((headerBytes / 4) << 4, p + 12);
  frame.writeUInt8(s.flags, p + 13);
  frame.writeUInt16BE(Math.min(s.window, 0xffff), p + 14);
  frame.writeUInt32BE(0, p + 16); // checksum, urgent pointer
  let o = p + TCP_HEADER_BYTES;
  if (s.mss !== undefined) {
    frame.writeUInt8(2, o);
    frame.writeUInt8(4, o + 1);
    frame.writeUInt16BE(s.mss, o + 2);
    o += 4;
  }
  if (s.windowScale !== undefined) {
    frame.writeUInt8(1, o); // NOP keeps the option aligned
    frame.writeUInt8(3, o + 1);
    frame.writeUInt8(3, o + 2);
    frame.writeUInt8(s.windowScale, o + 3);
    o += 4;
  }
  o += extra.copy(frame, o);
  payload.copy(frame, o);
  const sum = sumWords(
    frame,
    p,
    p + lengthBytes,
    pseudoHeaderSum(h.srcIp, h.dstIp, PROTO_TCP, lengthBytes),
  );
  frame.writeUInt16BE(finishChecksum(sum), p + 16);
  return frame;
}

/** Sequence-number arithmetic modulo 2^32 (RFC 793 comparisons). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
