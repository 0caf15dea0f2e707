/** RFC 1071 Internet checksum over `buf[start, end)`, continuing from `initial`. */
export function sumWords(buf: Buffer, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += buf.readUInt16BE(i);
  if (i < end) sum += buf.readUInt8(i) << 8;
  // Fold often enough that the sum never leaves the safe-integer range, even for 64 KB frames.
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export function finishChecksum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export function internetChecksum(buf: Buffer, start = 0, end = buf.length): number {
  return finishChecksum(sumWords(buf, start, end));
}

/** Sum of the IPv4 pseudo-header that TCP and UDP checksums cover. */
export function pseudoHeaderSum(srcIp: number, dstIp: number, protocol: number, length: number) {
  return (srcIp >>> 16) + (srcIp & 0xffff) + (dstIp >>> 16) + (dstIp & 0xffff) + protocol + length;
}
