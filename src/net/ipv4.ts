import { internetChecksum } from "./checksum.js";
import { ETHERNET_HEADER_BYTES, ETHERTYPE_IPV4, writeEthernetHeader } from "./ethernet.js";

export const IPV4_HEADER_BYTES = 20;
export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

export interface Ipv4Packet {
  srcIp: number;
  dstIp: number;
  protocol: number;
  ttl: number;
  /** Bytes after the header, cut to the header's total length (Ethernet may pad). */
  payload: Buffer;
}

export type Ipv4ParseResult =
  | { ok: true; packet: Ipv4Packet }
  | { ok: false; reason: "short" | "version" | "length" | "checksum" | "fragment" };

/**
 * Fragments are dropped: reassembly would need per-guest buffers the guest could fill at will,
 * and with a 64 KB MTU on the link a well-behaved guest never fragments.
 */
export function parseIpv4Packet(payload: Buffer): Ipv4ParseResult {
  if (payload.length < IPV4_HEADER_BYTES) return { ok: false, reason: "short" };
  const versionIhl = payload.readUInt8(0);
  if (versionIhl >> 4 !== 4) return { ok: false, reason: "version" };
  const headerBytes = (versionIhl & 0x0f) * 4;
  const totalBytes = payload.readUInt16BE(2);
  if (headerBytes < IPV4_HEADER_BYTES || totalBytes < headerBytes || totalBytes > payload.length)
    return { ok: false, reason: "length" };
  if (internetChecksum(payload, 0, headerBytes) !== 0) return { ok: false, reason: "checksum" };
  const flagsFragment = payload.readUInt16BE(6);
  const moreFragments = (flagsFragment & 0x2000) !== 0;
  if (moreFragments || (flagsFragment & 0x1fff) !== 0) return { ok: false, reason: "fragment" };
  return {
    ok: true,
    packet: {
      srcIp: payload.readUInt32BE(12),
      dstIp: payload.readUInt32BE(16),
      protocol: payload.readUInt8(9),
      ttl: payload.readUInt8(8),
      payload: payload.subarray(headerBytes, totalBytes),
    },
  };
}

export interface Ipv4FrameHeader {
  dstMac: Buffer;
  srcMac: Buffer;
  srcIp: number;
  dstIp: number;
  protocol: number;
}

/** Offset of the transport header in frames built by `allocIpv4Frame`. */
export const IPV4_PAYLOAD_OFFSET = ETHERNET_HEADER_BYTES + IPV4_HEADER_BYTES;

/**
 * One buffer for the whole frame (Ethernet + IPv4 + `payloadBytes`), headers written; the caller
 * fills the transport part at `IPV4_PAYLOAD_OFFSET`. One allocation per frame, no copies.
 */
export function allocIpv4Frame(h: Ipv4FrameHeader, payloadBytes: number): Buffer {
  const frame = Buffer.allocUnsafe(IPV4_PAYLOAD_OFFSET + payloadBytes);
  writeEthernetHeader(frame, h.dstMac, h.srcMac, ETHERTYPE_IPV4);
  const p = ETHERNET_HEADER_BYTES;
  frame.writeUInt8(0x45, p);
  frame.writeUInt8(0, p + 1);
  frame.writeUInt16BE(IPV4_HEADER_BYTES + payloadBytes, p + 2);
  frame.writeUInt16BE(0, p + 4);
  frame.writeUInt16BE(0x4000, p + 6); // don't fragment
  frame.writeUInt8(64, p + 8);
  frame.writeUInt8(h.protocol, p + 9);
  frame.writeUInt16BE(0, p + 10);
  frame.writeUInt32BE(h.srcIp, p + 12);
  frame.writeUInt32BE(h.dstIp, p + 16);
  frame.writeUInt16BE(internetChecksum(frame, p, p + IPV4_HEADER_BYTES), p + 10);
  return frame;
}
