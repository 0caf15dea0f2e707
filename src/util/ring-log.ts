import { closeSync, existsSync, fstatSync, openSync, readSync } from "node:fs";
import { open, rename, type FileHandle } from "node:fs/promises";
import { resolve } from "node:path";
import { Writable } from "node:stream";

/**
 * A log that keeps only its newest bytes, for streams a guest controls (the serial console, the
 * output of a detached sandbox's command): `path` grows to `segmentBytes`, then is renamed to
 * `path.1` (replacing the older one) and a new `path` starts. On disk there are never more than
 * two segments, so a guest writing without end costs at most 2 × `segmentBytes` of host disk,
 * and readers always find at least the last `segmentBytes` (less only right after a rotation).
 */

/** The serial console and a detached sandbox's log: the last 2–4 MiB are kept. */
export const CONSOLE_LOG_SEGMENT_BYTES = 2 * 1024 * 1024;

/** The segment before the current one, or where it would be. */
export function previousSegmentPath(path: string): string {
  return `${path}.1`;
}

/** Appends go through one file object per path in this process, so writers never race a rotation. */
class RingLogFile {
  private handle: FileHandle | undefined;
  private sizeBytes = 0;
  private queue: Promise<void> = Promise.resolve();
  writers = 0;

  constructor(
    readonly path: string,
    private readonly segmentBytes: number,
  ) {}

  append(data: Buffer): Promise<void> {
    // Best effort: a full disk or a removed directory loses log lines, never the sandbox.
    this.queue = this.queue.then(() => this.appendNow(data)).catch(() => undefined);
    return this.queue;
  }

  close(): Promise<void> {
    this.queue = this.queue.then(async () => {
      const handle = this.handle;
      this.handle = undefined;
      await handle?.close();
    });
    return this.queue.catch(() => undefined);
  }

  private async appendNow(data: Buffer): Promise<void> {
    // A chunk larger than a segment keeps only its end, like the ring as a whole.
    const kept = data.length > this.segmentBytes ? data.subarray(-this.segmentBytes) : data;
    if (this.handle === undefined) {
      this.handle = await open(this.path, "a", 0o600);
      this.sizeBytes = (await this.handle.stat()).size;
    }
    if (this.sizeBytes > 0 && this.sizeBytes + kept.length > this.segmentBytes) {
      await this.handle.close();
      this.handle = undefined;
      await rename(this.path, previousSegmentPath(this.path));
      this.handle = await open(this.path, "a", 0o600);
      this.sizeBytes = 0;
    }
    await this.handle.writeFile(kept);
    this.sizeBytes += kept.length;
  }
}

const openFiles = new Map<string, RingLogFile>();

/**
 * A writable stream appending to the ring log at `path`. Every writer of one path in this
 * process shares its rotation (the console and a detached `run`'s command both write the
 * sandbox log); the file is closed when the last writer ends. `segmentBytes` is fixed by the
 * first writer.
 */
export function openRingLog(path: string, segmentBytes = CONSOLE_LOG_SEGMENT_BYTES): Writable {
  const key = resolve(path);
  let file = openFiles.get(key);
  if (!file) {
    file = new RingLogFile(key, segmentBytes);
    openFiles.set(key, file);
  }
  const shared = file;
  shared.writers++;
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    if (--shared.writers > 0) return;
    openFiles.delete(key);
    await shared.close();
  };
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      void shared.append(chunk).then(() => callback());
    },
    // A console arrives a few bytes at a time (QEMU's serial sends each byte on its own):
    // what queued up while a write was in flight goes out as one.
    writev(chunks, callback) {
      void shared
        .append(Buffer.concat(chunks.map((c) => c.chunk as Buffer)))
        .then(() => callback());
    },
    final(callback) {
      void release().then(() => callback());
    },
    destroy(err, callback) {
      void release().then(() => callback(err));
    },
  });
}

/** The log's segments that exist, oldest first. */
export function ringLogSegments(path: string): string[] {
  return [previousSegmentPath(path), path].filter((p) => existsSync(p));
}

/** The last `maxBytes` of the log, across both segments. */
export function readRingLogTail(path: string, maxBytes: number): Buffer {
  const parts: Buffer[] = [];
  let wanted = maxBytes;
  for (const segment of [path, previousSegmentPath(path)]) {
    if (wanted <= 0) break;
    let fd: number;
    try {
      fd = openSync(segment, "r");
    } catch {
      continue;
    }
    try {
      const size = fstatSync(fd).size;
      const length = Math.min(size, wanted);
      const buf = Buffer.alloc(length);
      const n = readSync(fd, buf, 0, length, size - length);
      parts.unshift(buf.subarray(0, n));
      wanted -= n;
    } finally {
      closeSync(fd);
    }
  }
  return Buffer.concat(parts);
}
