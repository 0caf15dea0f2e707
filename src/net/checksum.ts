/** RFC 1071 Internet checksum over `buf[start, end)`, continuing from `initial`. */
export function sumWords(buf: Buffer, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  // 32-bit words halve the work on 64 KB frames; ones'-complement sums fold either way. A
  // 64 KB frame adds at most 2^14 words of < 2^32, far inside the safe-integer range.
  for (; i + 3 < end; i += 4) sum += buf.readUInt32BE(i);
  if (i + 1 < end) {
    sum += buf.readUInt16BE(i);
    i += 2;
  }
  if (i < end) sum += buf.readUInt8(i) << 8;
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

export function finishChecksum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

export function internetChecksum(buf: Buffer, start = 0, end = buf.length): number {
  return finishChecksum(sumWords(buf, start, end));
}

/** Sum of the IPv4 pseudo-header that TCP and UDP checksums cover. */
export function pseudoHeaderSum(srcIp: number, dstIp: number, protocol: number, length: number) {
  return (srcIp >>> 16) + (srcIp & 0xffff) + (dstIp >>> 16) + (dstIp & 0xffff) + protocol + length;
}
