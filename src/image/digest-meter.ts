import { createHash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

/**
 * A pass-through stage that hashes (sha256) and counts the bytes flowing through it, so a blob
 * is named by exactly what was written. `onChunk` sees the running total and may refuse the
 * stream (a blob larger than its descriptor) by returning an error.
 */
export class DigestMeter extends Transform {
  private readonly hash = createHash("sha256");
  sizeBytes = 0;

  constructor(private readonly onChunk?: (totalBytes: number, chunk: Buffer) => Error | void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.sizeBytes += chunk.length;
    const refused = this.onChunk?.(this.sizeBytes, chunk);
    if (refused) return done(refused);
    done(null, chunk);
  }

  /** `sha256:<hex>` of everything that passed; call once, after the stream finished. */
  digest(): string {
    return `sha256:${this.hash.digest("hex")}`;
  }
}
