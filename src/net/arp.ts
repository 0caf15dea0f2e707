import { ETHERNET_HEADER_BYTES, ETHERTYPE_ARP, writeEthernetHeader } from "./ethernet.js";

const ARP_BYTES = 28;
const OP_REQUEST = 1;
const OP_REPLY = 2;

export interface ArpRequest {
  senderMac: Buffer;
  senderIp: number;
  targetIp: number;
}

/** Only Ethernet/IPv4 requests are of interest; anything else is ignored. */
export function parseArpRequest(payload: Buffer): ArpRequest | undefined {
  if (payload.length < ARP_BYTES) return undefined;
  if (payload.readUInt16BE(0) !== 1 || payload.readUInt16BE(2) !== 0x0800) return undefined;
  if (payload.readUInt8(4) !== 6 || payload.readUInt8(5) !== 4) return undefined;
  if (payload.readUInt16BE(6) !== OP_REQUEST) return undefined;
  return {
    senderMac: Buffer.from(payload.subarray(8, 14)),
    senderIp: payload.readUInt32BE(14),
    targetIp: payload.readUInt32BE(24),
  };
}

export function buildArpReply(request: ArpRequest, ourMac: Buffer, ourIp: number): Buffer {
  const frame = Buffer.alloc(ETHERNET_HEADER_BYTES + ARP_BYTES);
  writeEthernetHeader(frame, request.senderMac, ourMac, ETHERTYPE_ARP);
  const p = ETHERNET_HEADER_BYTES;
  frame.writeUInt16BE(1, p);
  frame.writeUInt16BE(0x0800, p + 2);
  frame.writeUInt8(6, p + 4);
  frame.writeUInt8(4, p + 5);
  frame.writeUInt16BE(OP_REPLY, p + 6);
  ourMac.copy(frame, p + 8, 0, 6);
  frame.writeUInt32BE(ourIp, p + 14);
  request.senderMac.copy(frame, p + 18, 0, 6);
  frame.writeUInt32BE(request.senderIp, p + 24);
  return frame;
}

/** For tests and the guest side of unit tests: an ARP request frame. */
export function buildArpRequest(senderMac: Buffer, senderIp: number, targetIp: number): Buffer {
  const frame = Buffer.alloc(ETHERNET_HEADER_BYTES + ARP_BYTES);
  writeEthernetHeader(frame, Buffer.alloc(6, 0xff), senderMac, ETHERTYPE_ARP);
  const p = ETHERNET_HEADER_BYTES;
  frame.writeUInt16BE(1, p);
  frame.writeUInt16BE(0x0800, p + 2);
  frame.writeUInt8(6, p + 4);
  frame.writeUInt8(4, p + 5);
  frame.writeUInt16BE(OP_REQUEST, p + 6);
  senderMac.copy(frame, p + 8, 0, 6);
  frame.writeUInt32BE(senderIp, p + 14);
  frame.writeUInt32BE(targetIp, p + 24);
  return frame;
}
