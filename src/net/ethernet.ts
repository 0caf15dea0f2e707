export const ETHERNET_HEADER_BYTES = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;

export interface EthernetFrame {
  dstMac: Buffer;
  srcMac: Buffer;
  etherType: number;
  payload: Buffer;
}

export function parseEthernet(frame: Buffer): EthernetFrame | undefined {
  if (frame.length < ETHERNET_HEADER_BYTES) return undefined;
  return {
    dstMac: frame.subarray(0, 6),
    srcMac: frame.subarray(6, 12),
    etherType: frame.readUInt16BE(12),
    payload: frame.subarray(ETHERNET_HEADER_BYTES),
  };
}

/** Writes the header into the first 14 bytes of `frame` (callers build frames in one buffer). */
export function writeEthernetHeader(
  frame: Buffer,
  dstMac: Buffer,
  srcMac: Buffer,
  etherType: number,
): void {
  dstMac.copy(frame, 0, 0, 6);
  srcMac.copy(frame, 6, 0, 6);
  frame.writeUInt16BE(etherType, 12);
}

export function isBroadcastMac(mac: Buffer): boolean {
  return mac.length === 6 && mac.every((b) => b === 0xff);
}
