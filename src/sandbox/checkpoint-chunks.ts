/**
 * The content-addressed chunk store under checkpoints: files cut into fixed-size chunks,
 * each kept once by its SHA-256, so checkpoints share what they have in common with each
 * other and with the snapshot their sandbox started from (whose upper disk is put in too).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
} from "node:fs";
import { open, rename, type FileHandle } from "node:fs/promises";
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

  /** The store's directory for `digest`'s prefix. */
  private prefixDir(digest: string): string {
    return join(this.dir, digest.slice(0, 2));
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
    const objects = openOwnDir(this.dir, true);
    if (objects === undefined) return 0;
    try {
      for (const prefix of readdirSync(fdPath(objects))) {
        // Never through a symlink planted for a prefix: its target's files would be deleted.
        const dir = openOwnDir(join(fdPath(objects), prefix), false, join(this.dir, prefix));
        try {
          for (const name of readdirSync(fdPath(dir))) {
            if (keep.has(name)) continue;
            rmSync(join(fdPath(dir), name), { force: true });
            removed++;
          }
        } finally {
          closeSync(dir);
        }
      }
    } finally {
      closeSync(objects);
    }
    return removed;
  }

  private async read(digest: string): Promise<Buffer> {
    if (!/^[a-f0-9]{64}$/.test(digest))
      throw new ErrSnapshotMismatch(`checkpoint names a chunk that is not a digest: ${digest}`);
    const changed = (why: string): ErrSnapshotMismatch =>
      new ErrSnapshotMismatch(
        `checkpoint chunk ${digest.slice(0, 12)} was changed on disk (${why})`,
      );
    const missing = () =>
      new ErrSnapshotMismatch(`checkpoint chunk ${digest.slice(0, 12)} is missing`);
    const dir = openOwnDir(this.prefixDir(digest), true);
    if (dir === undefined) throw missing();
    let handle: FileHandle;
    try {
      // Never through a symlink: a planted link to /dev/zero or a huge file would be read
      // without end before any digest is checked. Non-blocking: a planted FIFO fails at once.
      handle = await open(join(fdPath(dir), digest), CHUNK_READ);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ELOOP") throw changed("a symlink");
      throw missing();
    } finally {
      closeSync(dir);
    }
    let chunk: Buffer;
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw changed("not a regular file");
      if (st.size > CHUNK_BYTES) throw changed(`${st.size} bytes, over a chunk's ${CHUNK_BYTES}`);
      // At most one byte past a chunk: a file that grows after the stat is still bounded.
      const buffer = Buffer.alloc(CHUNK_BYTES + 1);
      let length = 0;
      while (length < buffer.length) {
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      if (length > CHUNK_BYTES) throw changed(`over a chunk's ${CHUNK_BYTES} bytes`);
      chunk = buffer.subarray(0, length);
    } finally {
      await handle.close();
    }
    if (createHash("sha256").update(chunk).digest("hex") !== digest) throw changed("digest");
    return chunk;
  }

  /** True when the object was new. Written to a temp name and renamed: never half there. */
  private async put(digest: string, chunk: Buffer): Promise<boolean> {
    try {
      mkdirSync(this.prefixDir(digest), { recursive: true, mode: 0o700 });
    } catch (err) {
      // A dangling symlink there: refused below.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    // Written through the directory as opened and checked: never into a planted symlink's target.
    const dir = openOwnDir(this.prefixDir(digest));
    try {
      const path = join(fdPath(dir), digest);
      if (existsSync(path)) return false;
      const tmp = `${path}.tmp-${process.pid}`;
      const handle = await openNew(tmp);
      try {
        await handle.writeFile(chunk);
      } finally {
        await handle.close();
      }
      await rename(tmp, path);
      return true;
    } finally {
      closeSync(dir);
    }
  }
}

const DIR_NOFOLLOW = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const CHUNK_READ = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Opens a directory of the store (the objects directory, a prefix directory) without following
 * a symlink there, and checks it is a directory of this user's. Its contents are then reached
 * through the descriptor (`fdPath`), so a swap after the check changes nothing.
 */
function openOwnDir(path: string): number;
function openOwnDir(path: string, missingOk: true): number | undefined;
function openOwnDir(path: string, missingOk: false, shown: string): number;
function openOwnDir(path: string, missingOk = false, shown = path): number | undefined {
  const refused = (why: string) =>
    new ErrSnapshotMismatch(`checkpoint chunk store: ${shown} is ${why}: refused`);
  let fd: number;
  try {
    fd = openSync(path, DIR_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP" || code === "ENOTDIR") throw refused("a symlink or not a directory");
    if (code === "ENOENT" && missingOk) return undefined;
    throw err;
  }
  const st = fstatSync(fd);
  if (st.uid !== process.getuid?.()) {
    closeSync(fd);
    throw refused(`owned by uid ${st.uid}, not this user`);
  }
  return fd;
}

/** A path that names what descriptor `fd` of this process has open. */
function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

const NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Creates `path` for writing, never opening what is there: a leftover of a killed save with
 * this pid, or a planted symlink, is unlinked (the link itself, not its target) and the
 * file made anew.
 */
async function openNew(path: string): Promise<FileHandle> {
  try {
    return await open(path, NEW_FILE, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    rmSync(path, { force: true });
    return await open(path, NEW_FILE, 0o600);
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
