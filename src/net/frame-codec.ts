/**
 * QEMU's `-netdev stream` framing: each Ethernet frame is preceded by its length as a 4-byte
 * big-endian integer.
 */

/** 64 KB MTU + Ethernet header + VLAN tag, rounded up: nothing legitimate is larger. */
export const MAX_FRAME_BYTES = 65536 + 64;

export function encodeFrame(frame: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + frame.length);
  out.writeUInt32BE(frame.length, 0);
  frame.copy(out, 4);
  return out;
}

/**
 * Splits the byte stream into frames. Memory is bounded by one maximal frame: an oversized
 * length is skipped byte for byte (the stream stays in sync, the frame is dropped).
 */
export class FrameDecoder {
  private header = Buffer.alloc(4);
  private headerFill = 0;
  private body: Buffer | undefined;
  private bodyFill = 0;
  private skipBytes = 0;
  droppedFrames = 0;

  constructor(private readonly onFrame: (frame: Buffer) => void) {}

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.skipBytes > 0) {
        const n = Math.min(this.skipBytes, chunk.length - i);
        this.skipBytes -= n;
        i += n;
        continue;
      }
      if (this.body === undefined) {
        const n = Math.min(4 - this.headerFill, chunk.length - i);
        chunk.copy(this.header, this.headerFill, i, i + n);
        this.headerFill += n;
        i += n;
        if (this.headerFill < 4) return;
        this.headerFill = 0;
        const length = this.header.readUInt32BE(0);
        if (length > MAX_FRAME_BYTES) {
          this.droppedFrames++;
          this.skipBytes = length;
          continue;
        }
        if (length === 0) continue;
        // A whole frame inside this chunk needs no copy.
        if (chunk.length - i >= length) {
          this.onFrame(chunk.subarray(i, i + length));
          i += length;
          continue;
        }
        this.body = Buffer.allocUnsafe(length);
        this.bodyFill = 0;
      }
      const n = Math.min(this.body.length - this.bodyFill, chunk.length - i);
      chunk.copy(this.body, this.bodyFill, i, i + n);
      this.bodyFill += n;
      i += n;
      if (this.bodyFill === this.body.length) {
        const frame = this.body;
        this.body = undefined;
        this.onFrame(frame);
      }
    }
  }
}
