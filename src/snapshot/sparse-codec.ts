import { open, type FileHandle } from "node:fs/promises";
import { ErrSnapshotMismatch } from "../errors.js";

/**
 * The "wheellock sparse" encoding of a snapshot's RAM and disk files, which are mostly holes
 * (a 5 GiB upper disk holds a few MB; 512 MB of guest RAM ~40 MB): only pages with data travel.
 *
 *   header   "WLSPARS1" (8 bytes), total size (u64 BE)
 *   extent   offset (u64 BE), length (u32 BE), then `length` bytes       (repeated, ascending)
 *   end      offset = total size, length 0
 *
 * Offsets and lengths are multiples of 4 KiB (a last extent may end at the total size), so a
 * hostile stream cannot make the reader do more than a page's worth of work per 12 header
 * bytes. The stream is gzipped in the registry; the reader never trusts it beyond its checks.
 */
const MAGIC = Buffer.from("WLSPARS1");
const PAGE = 4096;
const READ_CHUNK = 1 << 20;
/** The largest extent written (and accepted): bounds the reader's buffer. */
const MAX_EXTENT = 4 << 20;
const ZERO_PAGE = Buffer.alloc(PAGE);
const ZERO_CHUNK = Buffer.alloc(READ_CHUNK);

/** Yields the encoding of the file at `path`, reading it once and skipping zero pages. */
export async function* encodeSparse(path: string): AsyncGenerator<Buffer> {
  const fh = await open(path, "r");
  try {
    const size = (await fh.stat()).size;
    yield Buffer.concat([MAGIC, u64(size)]);
    const buf = Buffer.alloc(READ_CHUNK);
    let pending: { offset: number; parts: Buffer[]; length: number } | undefined;
    const flush = function* (): Generator<Buffer> {
      if (!pending) return;
      yield Buffer.concat([u64(pending.offset), u32(pending.length), ...pending.parts]);
      pending = undefined;
    };
    for (let pos = 0; pos < size;) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(READ_CHUNK, size - pos), pos);
      if (bytesRead === 0) break;
      // Most of the file is holes: one comparison skips a whole MiB of them.
      if (buf.subarray(0, bytesRead).equals(ZERO_CHUNK.subarray(0, bytesRead))) {
        yield* flush();
        pos += bytesRead;
        continue;
      }
      for (let at = 0; at < bytesRead; at += PAGE) {
        const page = buf.subarray(at, Math.min(at + PAGE, bytesRead));
        if (page.equals(ZERO_PAGE.subarray(0, page.length))) {
          yield* flush();
          continue;
        }
        if (pending && pending.length + page.length > MAX_EXTENT) yield* flush();
        pending ??= { offset: pos + at, parts: [], length: 0 };
        pending.parts.push(Buffer.from(page));
        pending.length += page.length;
      }
      pos += bytesRead;
    }
    yield* flush();
    yield Buffer.concat([u64(size), u32(0)]);
  } finally {
    await fh.close();
  }
}

/**
 * Writes the decoded file to `path` (created, sparse: only extents are written), refusing any
 * stream that is not exactly a well-formed encoding of a file of `expectedSize` bytes.
 */
export async function decodeSparse(
  source: AsyncIterable<Buffer>,
  path: string,
  expectedSize: number,
  budget: DataBudget = { remainingBytes: Number.MAX_SAFE_INTEGER },
): Promise<void> {
  const fh = await open(path, "wx", 0o600);
  try {
    await decodeInto(source, fh, expectedSize, budget);
  } finally {
    await fh.close();
  }
}

/**
 * How many data bytes the decoders may still write, shared by the layers of one pull: a
 * hostile artifact can declare a huge file and send a small stream that inflates to it, so the
 * bytes actually written are what is bounded (holes cost nothing).
 */
export interface DataBudget {
  remainingBytes: number;
}

async function decodeInto(
  source: AsyncIterable<Buffer>,
  fh: FileHandle,
  expectedSize: number,
  budget: DataBudget,
): Promise<void> {
  const bad = (why: string): never => {
    throw new ErrSnapshotMismatch(`snapshot layer is malformed: ${why}`);
  };
  const reader = new ChunkReader(source);
  const header = await reader.take(16);
  if (!header || !header.subarray(0, 8).equals(MAGIC)) bad("no sparse header");
  const total = readU64(header as Buffer, 8);
  if (total !== expectedSize) bad(`it holds ${total} bytes, the snapshot says ${expectedSize}`);
  let next = 0;
  for (;;) {
    const head = await reader.take(12);
    if (!head) return bad("truncated");
    const offset = readU64(head, 0);
    const length = head.readUInt32BE(8);
    if (length === 0) {
      if (offset !== total) bad("end marker at the wrong offset");
      break;
    }
    if (offset < next || offset % PAGE !== 0) bad("extents out of order or unaligned");
    if (length > MAX_EXTENT || offset + length > total) bad("extent too large");
    if (length % PAGE !== 0 && offset + length !== total) bad("extent length unaligned");
    const data = await reader.take(length);
    if (!data) return bad("truncated extent");
    budget.remainingBytes -= length;
    if (budget.remainingBytes < 0)
      throw new ErrSnapshotMismatch(
        "no space left on device: the snapshot's layers decode to more data than the disk has free (nothing was kept)",
      );
    await fh.write(data, 0, length, offset);
    next = offset + length;
  }
  if (await reader.take(1)) bad("data after the end marker");
  await fh.truncate(total);
}

/** Exact-size reads over a stream of chunks of any size. */
class ChunkReader {
  private readonly it: AsyncIterator<Buffer>;
  private buffered: Buffer[] = [];
  private length = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** The next `n` bytes, or undefined at a clean end (no byte left). */
  async take(n: number): Promise<Buffer | undefined> {
    while (this.length < n) {
      const r = await this.it.next();
      if (r.done) {
        if (this.length === 0) return undefined;
        throw new ErrSnapshotMismatch("snapshot layer is malformed: truncated");
      }
      this.buffered.push(r.value);
      this.length += r.value.length;
    }
    const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return out;
  }
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function readU64(b: Buffer, at: number): number {
  const v = b.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw new ErrSnapshotMismatch("snapshot layer is malformed: offset out of range");
  return Number(v);
}
