/**
 * A VfsHandle over a host file descriptor (positional I/O only). Data moves through libuv's
 * thread pool (a read or write may wait on the disk); fstat and close stay on the event loop:
 * for a local file they are a few microseconds, while a trip through the pool costs tens,
 * and every CREATE, fstat and RELEASE of a small-file untar makes one.
 */
import {
  closeSync,
  fstatSync,
  fsync,
  ftruncate,
  read,
  write,
  writeSync,
  type Stats,
} from "node:fs";
import { promisify } from "node:util";
import { Errno, VfsError, asVfsError } from "../errors.js";
import type { VfsHandle, VfsStat } from "../provider.js";

/** Writes up to this size (a small file's whole content) are made on the event loop. */
const SYNC_WRITE_MAX_BYTES = 64 * 1024;

function writeAllSync(fd: number, data: Buffer, offset: number): number {
  let written = 0;
  while (written < data.length) {
    written += writeSync(fd, data, written, data.length - written, offset + written);
  }
  return written;
}

const readAt = promisify(read);
const writeAt = promisify(write);
const truncateFd = promisify(ftruncate);
const syncFd = promisify(fsync);

/**
 * Takes ownership of `fd`. `close()` closes it once no operation on it is still running (as
 * Node's FileHandle does): the guest may send RELEASE while a READ on the same handle waits in
 * the thread pool, and a descriptor number closed under it could be reused by the next file
 * the host process opens, which that READ would then read.
 */
export function fileHandle(fd: number, toStat: (st: Stats) => VfsStat): VfsHandle {
  let closed = false;
  let running = 0;
  const closeNow = (): void => {
    try {
      closeSync(fd);
    } catch {
      // Already gone: nothing to release.
    }
  };
  const guard = async <T>(op: () => Promise<T> | T): Promise<T> => {
    if (closed) throw new VfsError(Errno.EBADF);
    running++;
    try {
      return await op();
    } catch (err) {
      throw asVfsError(err);
    } finally {
      running--;
      if (closed && running === 0) closeNow();
    }
  };
  return {
    read: (offset, lengthBytes) =>
      guard(async () => {
        const buffer = Buffer.allocUnsafe(lengthBytes);
        let filled = 0;
        // Short reads happen below end of file too (signals, large reads); keep going until EOF.
        while (filled < lengthBytes) {
          const { bytesRead } = await readAt(
            fd,
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
        // A small write lands in the page cache in microseconds: no thread-pool trip for it.
        if (data.length <= SYNC_WRITE_MAX_BYTES) return writeAllSync(fd, data, offset);
        let written = 0;
        while (written < data.length) {
          const { bytesWritten } = await writeAt(
            fd,
            data,
            written,
            data.length - written,
            offset + written,
          );
          written += bytesWritten;
        }
        return written;
      }),
    stat: () => guard(() => toStat(fstatSync(fd))),
    truncate: (sizeBytes) => guard(() => truncateFd(fd, sizeBytes)),
    sync: () => guard(() => syncFd(fd)),
    close: async () => {
      if (closed) return;
      closed = true;
      if (running === 0) closeNow();
    },
  };
}
