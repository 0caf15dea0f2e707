/**
 * Link-level helpers for the network target: repairing checksums of mutated frames (so
 * mutations reach the TCP state machine instead of dying at the first checksum), and
 * relative TCP acknowledgement numbers (the stack picks a random ISN per flow; an input says
 * "ack = ISN + 1 + n" so a recorded conversation replays against any ISN).
 */
import {
  finishChecksum,
  pseudoHeaderSum,
  sumWords,
  internetChecksum,
} from "../../src/net/checksum.js";

const ETH = 14;
const IPV4 = 0x0800;
const TCP = 6;
const UDP = 17;
const ICMP = 1;

interface Ip {
  ipAt: number;
  headerBytes: number;
  end: number;
  protocol: number;
  srcIp: number;
  dstIp: number;
}

function ipOf(frame: Buffer): Ip | undefined {
  if (frame.length < ETH + 20 || frame.readUInt16BE(12) !== IPV4) return undefined;
  const headerBytes = (frame[ETH]! & 0x0f) * 4;
  const total = frame.readUInt16BE(ETH + 2);
  if (headerBytes < 20 || total < headerBytes || ETH + total > frame.length) return undefined;
  return {
    ipAt: ETH,
    headerBytes,
    end: ETH + total,
    protocol: frame[ETH + 9]!,
    srcIp: frame.readUInt32BE(ETH + 12),
    dstIp: frame.readUInt32BE(ETH + 16),
  };
}

/** Recomputes the IPv4 header checksum and the TCP, UDP or ICMP one, in a copy. */
export function fixChecksums(frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  if (out.length >= ETH + 20 && out.readUInt16BE(12) === IPV4) {
    // A mutated total length is kept when plausible, else it is made to fit the frame.
    const total = out.readUInt16BE(ETH + 2);
    if (total > out.length - ETH || total < 20)
      out.writeUInt16BE(Math.min(0xffff, out.length - ETH), ETH + 2);
  }
  const ip = ipOf(out);
  if (!ip) return out;
  out.writeUInt16BE(0, ip.ipAt + 10);
  out.writeUInt16BE(internetChecksum(out, ip.ipAt, ip.ipAt + ip.headerBytes), ip.ipAt + 10);
  const l4 = ip.ipAt + ip.headerBytes;
  const length = ip.end - l4;
  const field = ip.protocol === TCP ? 16 : ip.protocol === UDP ? 6 : ip.protocol === ICMP ? 2 : -1;
  if (field < 0 || length < field + 2) return out;
  out.writeUInt16BE(0, l4 + field);
  const sum =
    ip.protocol === ICMP
      ? internetChecksum(out, l4, ip.end)
      : finishChecksum(
          sumWords(out, l4, ip.end, pseudoHeaderSum(ip.srcIp, ip.dstIp, ip.protocol, length)),
        );
  out.writeUInt16BE(ip.protocol === UDP && sum === 0 ? 0xffff : sum, l4 + field);
  return out;
}

/** Key of a TCP flow as seen from the guest: source port, destination address and port. */
export function flowKey(srcPort: number, dstIp: number, dstPort: number): string {
  return `${srcPort}|${dstIp}|${dstPort}`;
}

/** A guest TCP segment whose ack is relative to the stack's ISN for its flow, made absolute. */
export function absoluteAck(frame: Buffer, issByFlow: ReadonlyMap<string, number>): Buffer {
  const ip = ipOf(frame);
  if (!ip || ip.protocol !== TCP || ip.end - (ip.ipAt + ip.headerBytes) < 20) return frame;
  const l4 = ip.ipAt + ip.headerBytes;
  const iss = issByFlow.get(flowKey(frame.readUInt16BE(l4), ip.dstIp, frame.readUInt16BE(l4 + 2)));
  if (iss === undefined) return frame;
  const out = Buffer.from(frame);
  out.writeUInt32BE((iss + 1 + frame.readUInt32BE(l4 + 8)) >>> 0, l4 + 8);
  // Only a frame whose checksum was right before keeps a right one: the rest stay broken.
  const wasValid = fixChecksums(frame).equals(frame);
  return wasValid ? fixChecksums(out) : out;
}

/** The stack's ISN from a SYN-ACK it sent, keyed by the guest's view of the flow. */
export function noteIss(frame: Buffer, issByFlow: Map<string, number>): void {
  const ip = ipOf(frame);
  if (!ip || ip.protocol !== TCP) return;
  const l4 = ip.ipAt + ip.headerBytes;
  if ((frame[l4 + 13]! & 0x12) !== 0x12) return;
  issByFlow.set(
    flowKey(frame.readUInt16BE(l4 + 2), ip.srcIp, frame.readUInt16BE(l4)),
    frame.readUInt32BE(l4 + 4),
  );
}
