/**
 * The content-addressed chunk store under checkpoints: files cut into fixed-size chunks,
 * each kept once by its SHA-256, so checkpoints share what they have in common with each
 * other and with the snapshot their sandbox started from (whose upper disk is put in too).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { open, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { ErrSnapshotMismatch } from "../errors.js";

const execFileAsync = promisify(execFile);

/** 1 MiB: small enough that a few changed guest pages or disk blocks stay cheap. */
export const CHUNK_BYTES = 1024 * 1024;
/** A chunk of zeros is stored as a hole, never as an object. */
export const ZERO_CHUNK = "0";

/** One file as chunk digests (ZERO_CHUNK for a chunk of zeros), plus its exact size. */
export interface ChunkedFile {
  sizeBytes: number;
  chunks: string[];
}

/** What putting a file in the store cost. */
export interface IngestCost {
  /** Bytes of chunks that were not in the store before (what the store grew by). */
  newBytes: number;
  /** Bytes of non-zero chunks that were already there (shared with a base or another checkpoint). */
  sharedBytes: number;
}

export class ChunkStore {
  constructor(readonly dir: string) {}

  objectPath(digest: string): string {
    return join(this.dir, digest.slice(0, 2), digest);
  }

  /**
   * Cuts `path` into chunks and stores the missing ones. `sparse`: only the extents that hold
   * data are read (`qemu-img map`), so a 5 GiB upper disk with 20 MB written costs 20 MB.
   */
  async ingest(path: string, sparse: boolean): Promise<{ file: ChunkedFile; cost: IngestCost }> {
    const sizeBytes = statSync(path).size;
    const count = Math.ceil(sizeBytes / CHUNK_BYTES);
    const chunks = new Array<string>(count).fill(ZERO_CHUNK);
    const wanted = sparse ? await dataChunks(path, count) : allChunks(count);
    const cost: IngestCost = { newBytes: 0, sharedBytes: 0 };
    const handle = await open(path, "r");
    try {
      const buffer = Buffer.alloc(CHUNK_BYTES);
      for (const index of wanted) {
        const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, index * CHUNK_BYTES);
        const chunk = buffer.subarray(0, bytesRead);
        if (isZero(chunk)) continue;
        const digest = createHash("sha256").update(chunk).digest("hex");
        chunks[index] = digest;
        if (await this.put(digest, chunk)) cost.newBytes += bytesRead;
        else cost.sharedBytes += bytesRead;
      }
    } finally {
      await handle.close();
    }
    return { file: { sizeBytes, chunks }, cost };
  }

  /**
   * Writes the file back to `dest` (holes for zero chunks). Every chunk is checked against its
   * digest: an object changed on disk is refused, never handed to QEMU.
   */
  async materialize(file: ChunkedFile, dest: string): Promise<void> {
    const handle = await open(dest, "wx", 0o600);
    try {
      await handle.truncate(file.sizeBytes);
      for (const [index, digest] of file.chunks.entries()) {
        if (digest === ZERO_CHUNK) continue;
        const chunk = await this.read(digest);
        await handle.write(chunk, 0, chunk.length, index * CHUNK_BYTES);
      }
    } finally {
      await handle.close();
    }
  }

  /** Removes every object no manifest names (call under the store's lock). */
  sweep(keep: ReadonlySet<string>): number {
    let removed = 0;
    if (!existsSync(this.dir)) return 0;
    for (const prefix of readdirSync(this.dir)) {
      for (const name of readdirSync(join(this.dir, prefix))) {
        if (keep.has(name)) continue;
        rmSync(join(this.dir, prefix, name), { force: true });
        removed++;
      }
    }
    return removed;
  }

  private async read(digest: string): Promise<Buffer> {
    if (!/^[a-f0-9]{64}$/.test(digest))
      throw new ErrSnapshotMismatch(`checkpoint names a chunk that is not a digest: ${digest}`);
    let chunk: Buffer;
    try {
      const handle = await open(this.objectPath(digest), "r");
      try {
        chunk = await handle.readFile();
      } finally {
        await handle.close();
      }
    } catch {
      throw new ErrSnapshotMismatch(`checkpoint chunk ${digest.slice(0, 12)} is missing`);
    }
    const actual = createHash("sha256").update(chunk).digest("hex");
    if (actual !== digest || chunk.length > CHUNK_BYTES)
      throw new ErrSnapshotMismatch(`checkpoint chunk ${digest.slice(0, 12)} was changed on disk`);
    return chunk;
  }

  /** True when the object was new. Written to a temp name and renamed: never half there. */
  private async put(digest: string, chunk: Buffer): Promise<boolean> {
    const path = this.objectPath(digest);
    if (existsSync(path)) return false;
    mkdirSync(join(this.dir, digest.slice(0, 2)), { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, chunk, { mode: 0o600 });
    await rename(tmp, path);
    return true;
  }
}

function isZero(chunk: Buffer): boolean {
  // Compare 8 bytes at a time; most non-zero chunks differ in their first bytes.
  const words = new BigUint64Array(chunk.buffer, chunk.byteOffset, Math.floor(chunk.length / 8));
  for (const word of words) if (word !== 0n) return false;
  for (let i = words.length * 8; i < chunk.length; i++) if (chunk[i] !== 0) return false;
  return true;
}

function allChunks(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}

/** The chunk indices a sparse file has data in, from QEMU's own extent map (SEEK_DATA). */
async function dataChunks(path: string, count: number): Promise<number[]> {
  // Not runTool: it keeps only the tail of a tool's output, and a busy disk has many extents.
  const { stdout } = await execFileAsync("qemu-img", ["map", "--output=json", "-f", "raw", path], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const extents = JSON.parse(stdout) as Array<{ start: number; length: number; data: boolean }>;
  const wanted = new Set<number>();
  for (const extent of extents) {
    if (!extent.data) continue;
    const first = Math.floor(extent.start / CHUNK_BYTES);
    const last = Math.min(count - 1, Math.floor((extent.start + extent.length - 1) / CHUNK_BYTES));
    for (let i = first; i <= last; i++) wanted.add(i);
  }
  return [...wanted].sort((a, b) => a - b);
}
