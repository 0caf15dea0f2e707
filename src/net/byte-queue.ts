/**
 * Bytes waiting for the guest's acknowledgement: appended at the tail, read at any offset (for
 * retransmission), dropped from the head as acknowledgements arrive. No copying on append.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  private headOffset = 0; // bytes of chunks[0] already dropped
  private total = 0;

  get lengthBytes(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Up to `maxBytes` starting `offset` bytes from the head (copied only if it spans chunks). */
  read(offset: number, maxBytes: number): Buffer {
    const want = Math.max(0, Math.min(maxBytes, this.total - offset));
    if (want === 0) return Buffer.alloc(0);
    let skip = offset + this.headOffset;
    let i = 0;
    while (i < this.chunks.length) {
      const c = this.chunks[i] as Buffer;
      if (skip < c.length) break;
      skip -= c.length;
      i++;
    }
    const first = this.chunks[i] as Buffer;
    if (first.length - skip >= want) return first.subarray(skip, skip + want);
    const out = Buffer.allocUnsafe(want);
    let copied = 0;
    while (copied < want && i < this.chunks.length) {
      const c = this.chunks[i] as Buffer;
      const n = Math.min(c.length - skip, want - copied);
      c.copy(out, copied, skip, skip + n);
      copied += n;
      skip = 0;
      i++;
    }
    return out;
  }

  drop(nBytes: number): void {
    let n = Math.min(nBytes, this.total);
    this.total -= n;
    while (n > 0) {
      const c = this.chunks[0] as Buffer;
      const left = c.length - this.headOffset;
      if (n < left) {
        this.headOffset += n;
        return;
      }
      n -= left;
      this.chunks.shift();
      this.headOffset = 0;
    }
  }

  clear(): void {
    this.chunks = [];
    this.headOffset = 0;
    this.total = 0;
  }
}
