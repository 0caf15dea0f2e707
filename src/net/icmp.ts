import { internetChecksum } from "./checksum.js";
import { IPV4_PAYLOAD_OFFSET, PROTO_ICMP, allocIpv4Frame, type Ipv4FrameHeader } from "./ipv4.js";

const ECHO_REPLY = 0;
export const ICMP_ECHO_REQUEST = 8;

/** The reply to an echo request, or undefined if `icmp` is not a valid echo request. */
export function buildEchoReply(icmp: Buffer, h: Omit<Ipv4FrameHeader, "protocol">) {
  if (icmp.length < 8 || icmp.readUInt8(0) !== ICMP_ECHO_REQUEST) return undefined;
  if (internetChecksum(icmp) !== 0) return undefined;
  const frame = allocIpv4Frame({ ...h, protocol: PROTO_ICMP }, icmp.length);
  icmp.copy(frame, IPV4_PAYLOAD_OFFSET);
  frame.writeUInt8(ECHO_REPLY, IPV4_PAYLOAD_OFFSET);
  frame.writeUInt16BE(0, IPV4_PAYLOAD_OFFSET + 2);
  frame.writeUInt16BE(internetChecksum(frame, IPV4_PAYLOAD_OFFSET), IPV4_PAYLOAD_OFFSET + 2);
  return frame;
}
