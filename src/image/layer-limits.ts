import { statfs } from "node:fs/promises";
import { Transform, type TransformCallback } from "node:stream";
import { ErrImage } from "../errors.js";

/**
 * Decompression bombs. A layer is gzip or zstd, and a few megabytes of either can stand for
 * terabytes of zeros; neither the manifest's size (compressed) nor the diff_id (checked only at
 * the end) bounds what flattening would write or hash. So each layer may decompress to at most
 * `ratio` times its compressed size (never less than `floorBytes`: small layers of text or
 * zeros legitimately reach high ratios), and never to more than the cache filesystem has free.
 * Registries' layers compress 2-10x; gzip cannot exceed ~1030x, zstd goes far beyond.
 */
export interface LayerLimits {
  /** Decompressed bytes per compressed byte a layer may reach. */
  readonly ratio: number;
  /** Decompressed bytes any layer may reach, whatever its compressed size. */
  readonly floorBytes: number;
}

export const DEFAULT_LAYER_LIMITS: LayerLimits = { ratio: 100, floorBytes: 256 * 1024 * 1024 };

export interface LayerBudget {
  /** Decompressed bytes this layer may reach. */
  readonly limitBytes: number;
  /** Why the limit is what it is, for the error message. */
  readonly what: "ratio" | "disk";
}

/** Bytes the filesystem holding `dir` has free for this user. */
export async function freeBytes(dir: string): Promise<number> {
  const fs = await statfs(dir);
  return fs.bavail * fs.bsize;
}

/** The budget of one layer: the ratio limit, or the free space if that is smaller. */
export function layerBudget(
  compressedBytes: number,
  freeDiskBytes: number,
  limits: LayerLimits,
): LayerBudget {
  const byRatio = Math.max(limits.floorBytes, compressedBytes * limits.ratio);
  return byRatio <= freeDiskBytes
    ? { limitBytes: byRatio, what: "ratio" }
    : { limitBytes: freeDiskBytes, what: "disk" };
}

/**
 * Counts a layer's decompressed bytes and fails the stream as soon as they pass the budget,
 * whether they are file data, tar headers or trailing bytes after the archive. `reserve` lets
 * the tar reader refuse an entry by its declared size before any of it is written.
 */
export class DecompressedBytesCap extends Transform {
  private seenBytes = 0;

  constructor(
    private readonly budget: LayerBudget,
    private readonly layerName: string,
    private readonly compressedBytes: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seenBytes += chunk.length;
    if (this.seenBytes > this.budget.limitBytes) return done(this.overError());
    done(null, chunk);
  }

  /** Throws when an entry of `declaredBytes` starting now would pass the budget. */
  reserve(declaredBytes: number): void {
    if (this.seenBytes + declaredBytes > this.budget.limitBytes) throw this.overError();
  }

  private overError(): Error {
    const mib = (n: number): string => `${Math.round(n / 1048576)} MiB`;
    if (this.budget.what === "disk")
      // Reported like any full disk (disk-full.ts turns ENOSPC into its one line).
      return Object.assign(
        new Error(
          `No space left on device: layer ${this.layerName} decompresses to more than the ${mib(this.budget.limitBytes)} free`,
        ),
        { code: "ENOSPC" },
      );
    return new ErrImage(
      `layer ${this.layerName} decompresses to more than ${mib(this.budget.limitBytes)} (${this.compressedBytes} bytes compressed): refused as a likely decompression bomb`,
    );
  }
}
