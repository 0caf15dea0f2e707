/** A VfsHandle over a host file descriptor (positional I/O only). */
import type { promises as fsp, Stats } from "node:fs";
import { asVfsError } from "../errors.js";
import type { VfsHandle, VfsStat } from "../provider.js";

export function fileHandle(file: fsp.FileHandle, toStat: (st: Stats) => VfsStat): VfsHandle {
  const guard = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      throw asVfsError(err);
    }
  };
  let closed = false;
  return {
    read: (offset, lengthBytes) =>
      guard(async () => {
        const buffer = Buffer.allocUnsafe(lengthBytes);
        let filled = 0;
        // Short reads happen below end of file too (signals, large reads); keep going until EOF.
        while (filled < lengthBytes) {
          const { bytesRead } = await file.read(
            buffer,
            filled,
            lengthBytes - filled,
            offset + filled,
          );
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        return buffer.subarray(0, filled);
      }),
    write: (offset, data) =>
      guard(async () => {
        let written = 0;
        while (written < data.length) {
          const { bytesWritten } = await file.write(
            data,
            written,
            data.length - written,
            offset + written,
          );
          written += bytesWritten;
        }
        return written;
      }),
    stat: () => guard(async () => toStat(await file.stat())),
    truncate: (sizeBytes) => guard(() => file.truncate(sizeBytes)),
    sync: () => guard(() => file.sync()),
    close: async () => {
      if (closed) return;
      closed = true;
      await file.close().catch(() => undefined);
    },
  };
}
