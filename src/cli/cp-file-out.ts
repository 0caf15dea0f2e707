/**
 * One guest file copied to the host (`wheellock cp` out of a sandbox, single files and the
 * files of a directory copy). The guest shapes what arrives, so the copy stops at the size
 * the file had when it was listed: a guest that keeps appending (and punches holes behind
 * the reader to keep its own disk small) cannot stream without end into the host's disk.
 * Zero runs arrive as holes (sparse-write.ts).
 */
import { pipeline } from "node:stream/promises";
import type { SandboxApi } from "../sandbox/index.js";
import { createSparseWriteStream } from "./sparse-write.js";

/** Passes at most `limit` bytes, then stops reading (the source is destroyed). */
function upTo(limit: number) {
  return async function* (chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    let left = limit;
    if (left <= 0) return;
    for await (const chunk of chunks) {
      const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
      left -= part.length;
      yield part;
      if (left <= 0) return;
    }
  };
}

export async function copyGuestFileOut(
  sandbox: SandboxApi,
  from: string,
  to: string,
  file: { sizeBytes: number; mode: number; exclusive?: boolean },
): Promise<void> {
  await pipeline(
    sandbox.readFileStream(from),
    upTo(file.sizeBytes),
    createSparseWriteStream(to, file.mode, { exclusive: file.exclusive ?? false }),
  );
}
