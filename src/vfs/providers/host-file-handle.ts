/** A VfsHandle over a host file descriptor (positional I/O only). */
import {
  close,
  closeSync,
  fstat,
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
import type { SyncGate } from "./sync-gate.js";

const readAsync = promisify(read);
const writeAsync = promisify(write);
const fstatAsync = promisify(fstat);
const ftruncateAsync = promisify(ftruncate);
const fsyncAsync = promisify(fsync);
const closeAsync = promisify(close);

/**
 * Writes up to this size may run on the event loop (through the gate): an untar's files and
 * tar's 10 KiB records. Larger ones, and every read (a cold read waits for the disk), always
 * go through the thread pool.
 */
const SYNC_WRITE_MAX_BYTES = 64 * 1024;

/**
 * Owns `fd`; metadata and small writes go through `gate`. The descriptor is closed only once
 * no call on it is running: a request the guest sends after (or during) RELEASE must fail
 * with EBADF, never reach whatever file reuses the number.
 */
export function fileHandle(fd: number, toStat: (st: Stats) => VfsStat, gate: SyncGate): VfsHandle {
  let closed = false;
  let running = 0;
  let idle: (() => void) | undefined;
  const guard = async <T>(op: () => Promise<T>): Promise<T> => {
    if (closed) throw new VfsError(Errno.EBADF);
    running++;
    try {
      return await op();
    } catch (err) {
      throw asVfsError(err);
    } finally {
      running--;
      if (running === 0) idle?.();
    }
  };
  const writeAt = async (data: Buffer, from: number, position: number): Promise<number> =>
    data.length - from <= SYNC_WRITE_MAX_BYTES
      ? gate.call(
          () => writeSync(fd, data, from, data.length - from, position),
          async () => (await writeAsync(fd, data, from, data.length - from, position)).bytesWritten,
        )
      : (await writeAsync(fd, data, from, data.length - from, position)).bytesWritten;
  return {
    read: (offset, lengthBytes) =>
      guard(async () => {
        const buffer = Buffer.allocUnsafe(lengthBytes);
        let filled = 0;
        // Short reads happen below end of file too (signals, large reads); keep going until EOF.
        while (filled < lengthBytes) {
          const { bytesRead } = await readAsync(
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
        let written = 0;
        while (written < data.length) written += await writeAt(data, written, offset + written);
        return written;
      }),
    stat: () =>
      guard(async () =>
        toStat(
          await gate.call(
            () => fstatSync(fd),
            () => fstatAsync(fd),
          ),
        ),
      ),
    truncate: (sizeBytes) => guard(() => ftruncateAsync(fd, sizeBytes)),
    sync: () => guard(() => fsyncAsync(fd)),
    close: async () => {
      if (closed) return;
      closed = true;
      if (running > 0) await new Promise<void>((resolve) => (idle = resolve));
      await gate
        .call(
          () => closeSync(fd),
          () => closeAsync(fd),
        )
        .catch(() => undefined);
    },
  };
}
