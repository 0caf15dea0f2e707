/** A bounded slice of a log file, and its size now (0 and empty while it does not exist). */
import { closeSync, openSync, readSync, statSync } from "node:fs";

export function readLogSlice(
  path: string,
  offset: number,
  maxBytes: number,
): { data: Buffer; size: number } {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return { data: Buffer.alloc(0), size: 0 };
  }
  if (offset >= size) return { data: Buffer.alloc(0), size };
  const data = Buffer.allocUnsafe(Math.min(maxBytes, size - offset));
  const fd = openSync(path, "r");
  try {
    const n = readSync(fd, data, 0, data.length, offset);
    return { data: data.subarray(0, n), size };
  } finally {
    closeSync(fd);
  }
}
