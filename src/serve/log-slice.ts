/**
 * Bounded reads of a sandbox's ring log (util/ring-log.ts: `vm.log.1`, then `vm.log`) for
 * `log --remote`, so a remote reader sees what local `log` prints: the older segment first, and
 * when following, every byte once across rotations. Where a reader got to is a cursor naming a
 * segment by inode (a rotation renames, so the inode follows the bytes) and an offset in it.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { previousSegmentPath } from "../util/index.js";

export interface LogCursor {
  /** The segment's inode; 0 before any segment was read. */
  readonly ino: number;
  readonly offset: number;
}

export const LOG_START: LogCursor = { ino: 0, offset: 0 };

/** `INO.OFFSET` as the API carries it; undefined for anything else. */
export function parseLogCursor(text: string): LogCursor | undefined {
  const m = /^(\d{1,16})\.(\d{1,16})$/.exec(text);
  if (!m) return undefined;
  const cursor = { ino: Number(m[1]), offset: Number(m[2]) };
  return Number.isSafeInteger(cursor.ino) && Number.isSafeInteger(cursor.offset)
    ? cursor
    : undefined;
}

export function formatLogCursor(cursor: LogCursor): string {
  return `${cursor.ino}.${cursor.offset}`;
}

interface Segment {
  fd: number;
  ino: number;
  size: number;
}

function openSegment(path: string): Segment | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return undefined; // not written yet
  }
  const st = fstatSync(fd);
  return { fd, ino: st.ino, size: st.size };
}

/**
 * Up to `maxBytes` after `cursor`: the rest of the segment it names (the older one if it has
 * rotated since), then the current one. A cursor naming a segment that is gone (rotated twice
 * since), or none: from the start of the older segment. Returns where the read ended.
 */
export function readRingLog(
  path: string,
  cursor: LogCursor,
  maxBytes: number,
): { data: Buffer; cursor: LogCursor } {
  // The current segment first: if it rotates meanwhile, the "older" one opened next is that
  // same file, read once.
  const current = openSegment(path);
  let older = openSegment(previousSegmentPath(path));
  if (older && current && older.ino === current.ino) {
    closeSync(older.fd);
    older = undefined;
  }
  try {
    const order = [older, current].filter((s): s is Segment => s !== undefined);
    const found = order.findIndex((s) => s.ino === cursor.ino);
    const at = Math.max(0, found);
    const first = order[at];
    // An offset past the end (a segment replaced in place) starts that segment again.
    let offset = found >= 0 && first && cursor.offset <= first.size ? cursor.offset : 0;
    const chunks: Buffer[] = [];
    let room = maxBytes;
    let end: LogCursor = first ? { ino: first.ino, offset } : cursor;
    for (let i = at; i < order.length && room > 0; i++, offset = 0) {
      const seg = order[i] as Segment;
      const data = Buffer.allocUnsafe(Math.min(room, Math.max(0, seg.size - offset)));
      const n = data.length > 0 ? readSync(seg.fd, data, 0, data.length, offset) : 0;
      chunks.push(data.subarray(0, n));
      room -= n;
      end = { ino: seg.ino, offset: offset + n };
      if (offset + n < seg.size) break; // the bound, not the segment's end
    }
    return { data: Buffer.concat(chunks), cursor: end };
  } finally {
    if (current) closeSync(current.fd);
    if (older) closeSync(older.fd);
  }
}
