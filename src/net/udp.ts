import { finishChecksum, pseudoHeaderSum, sumWords } from "./checksum.js";
import { IPV4_PAYLOAD_OFFSET, PROTO_UDP, allocIpv4Frame, type Ipv4FrameHeader } from "./ipv4.js";

export const UDP_HEADER_BYTES = 8;

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

export function parseUdp(segment: Buffer, srcIp: number, dstIp: number): UdpDatagram | undefined {
  if (segment.length < UDP_HEADER_BYTES) return undefined;
  const lengthBytes = segment.readUInt16BE(4);
  if (lengthBytes < UDP_HEADER_BYTES || lengthBytes > segment.length) return undefined;
  const checksum = segment.readUInt16BE(6);
  // Zero means the sender did not compute one (allowed over IPv4).
  if (checksum !== 0) {
    const sum = sumWords(
      segment,
      0,
      lengthBytes,
      pseudoHeaderSum(srcIp, dstIp, PROTO_UDP, lengthBytes),
    );
    if (finishChecksum(sum) !== 0) return undefined;
  }
  return {
    srcPort: segment.readUInt16BE(0),
    dstPort: segment.readUInt16BE(2),
    payload: segment.subarray(UDP_HEADER_BYTES, lengthBytes),
  };
}

export function buildUdpFrame(
  h: Omit<Ipv4FrameHeader, "protocol">,
  srcPort: number,
  dstPort: number,
  payload: Buffer,
): Buffer {
  const lengthBytes = UDP_HEADER_BYTES + payload.length;
  const frame = allocIpv4Frame({ ...h, protocol: PROTO_UDP }, lengthBytes);
  const p = IPV4_PAYLOAD_OFFSET;
  frame.writeUInt16BE(srcPort, p);
  frame.writeUInt16BE(dstPort, p + 2);
  frame.writeUInt16BE(lengthBytes, p + 4);
  frame.writeUInt16BE(0, p + 6);
  payload.copy(frame, p + UDP_HEADER_BYTES);
  const sum = sumWords(
    frame,
    p,
    p + lengthBytes,
    pseudoHeaderSum(h.srcIp, h.dstIp, PROTO_UDP, lengthBytes),
  );
  frame.writeUInt16BE(finishChecksum(sum) || 0xffff, p + 6);
  return frame;
}
