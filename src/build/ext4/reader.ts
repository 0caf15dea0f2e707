/**
 * A read-only ext4 reader in TypeScript: inodes, extent trees (and old block maps), directories
 * (linear and htree, read linearly) and extended attributes. It exists so that the builder can
 * read a sandbox's writable layer (written by an untrusted guest) and a stage's root disk on
 * the host without root, loop devices or a C parser of hostile input: every offset is bounds
 * checked and every walk is bounded, so a crafted disk can make a read fail, never hang it or
 * reach outside the image file.
 */
import { open, type FileHandle } from "node:fs/promises";
import { ErrBuild } from "../../errors.js";
import { parseSuperblock, SUPERBLOCK_OFFSET, type Superblock } from "./superblock.js";
import { parseXattrs, type Xattr } from "./xattr.js";

export type Ext4Kind = "file" | "dir" | "symlink" | "char" | "block" | "fifo" | "socket";

export interface Ext4Inode {
  ino: number;
  kind: Ext4Kind;
  /** Permission bits with setuid/setgid/sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  sizeBytes: number;
  mtimeSec: number;
  links: number;
  devMajor: number;
  devMinor: number;
  flags: number;
  /** i_block: extent root, block map or fast-symlink target. */
  blockArea: Buffer;
  fileAclBlock: number;
  /** The raw inode (in-inode xattrs live past its first 128 bytes). */
  raw: Buffer;
}

export interface Ext4DirEntry {
  name: string;
  ino: number;
}

const ROOT_INO = 2;
const EXTENTS_FL = 0x80000;
const INLINE_DATA_FL = 0x10000000;
const ENCRYPT_FL = 0x800;
const EXTENT_MAGIC = 0xf30a;
/** No real tree is deeper than 5; a crafted one must not recurse forever. */
const MAX_EXTENT_DEPTH = 5;
const MAX_DIR_BYTES = 256 * 1024 * 1024;
const MAX_SYMLINK_BYTES = 4096;
const UNINIT_LEN = 32768;

const KIND_BY_TYPE: Record<number, Ext4Kind> = {
  0x8: "file",
  0x4: "dir",
  0xa: "symlink",
  0x2: "char",
  0x6: "block",
  0x1: "fifo",
  0xc: "socket",
};

/** One run of a file's data: logical block, physical block, length, unwritten (reads as zeros). */
interface Run {
  logical: number;
  physical: number;
  length: number;
  zero: boolean;
}

export class Ext4Reader {
  private readonly inodeTables = new Map<number, number>();
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });

  private constructor(
    private readonly fh: FileHandle,
    readonly sb: Superblock,
    private readonly what: string,
  ) {}

  /** Opens an ext4 image file; `what` names it in errors ("step 3's writable layer"). */
  static async open(path: string, what: string): Promise<Ext4Reader> {
    const fh = await open(path, "r");
    try {
      const buf = Buffer.alloc(1024);
      await fh.read(buf, 0, 1024, SUPERBLOCK_OFFSET);
      return new Ext4Reader(fh, parseSuperblock(buf, what), what);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  close(): Promise<void> {
    return this.fh.close();
  }

  fail(why: string): never {
    throw new ErrBuild(`${this.what}: ${why}`);
  }

  get rootIno(): number {
    return ROOT_INO;
  }

  /** Reads `length` bytes at byte `offset`; past the end of the file reads as zeros. */
  async readAt(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return buf;
  }

  private async readBlocks(block: number, count: number): Promise<Buffer> {
    if (block < 0 || count < 0 || block + count > this.sb.blocksCount)
      this.fail(`block ${block}+${count} is outside the filesystem`);
    return this.readAt(block * this.sb.blockSize, count * this.sb.blockSize);
  }

  private async inodeTableBlock(group: number): Promise<number> {
    const cached = this.inodeTables.get(group);
    if (cached !== undefined) return cached;
    const desc = await this.readAt(this.sb.descTableOffset + group * this.sb.descSize, 64);
    let table = desc.readUInt32LE(0x08);
    if (this.sb.is64bit && this.sb.descSize >= 64) table += desc.readUInt32LE(0x28) * 2 ** 32;
    if (table === 0 || table >= this.sb.blocksCount) this.fail(`group ${group}: bad inode table`);
    this.inodeTables.set(group, table);
    return table;
  }

  async inode(ino: number): Promise<Ext4Inode> {
    if (!Number.isInteger(ino) || ino < 1 || ino > this.sb.inodesCount)
      this.fail(`inode number ${ino} out of range`);
    const group = Math.floor((ino - 1) / this.sb.inodesPerGroup);
    const index = (ino - 1) % this.sb.inodesPerGroup;
    const table = await this.inodeTableBlock(group);
    const raw = await this.readAt(
      table * this.sb.blockSize + index * this.sb.inodeSize,
      this.sb.inodeSize,
    );
    const modeBits = raw.readUInt16LE(0x00);
    const kind = KIND_BY_TYPE[modeBits >> 12];
    if (!kind) this.fail(`inode ${ino} has an unknown file type`);
    const flags = raw.readUInt32LE(0x20);
    if (flags & ENCRYPT_FL) this.fail(`inode ${ino} is encrypted`);
    if (flags & INLINE_DATA_FL) this.fail(`inode ${ino} uses inline data (not supported)`);
    const blockArea = raw.subarray(0x28, 0x28 + 60);
    let devMajor = 0;
    let devMinor = 0;
    if (kind === "char" || kind === "block") {
      const old = blockArea.readUInt32LE(0);
      if (old !== 0) {
        devMajor = (old >> 8) & 0xff;
        devMinor = old & 0xff;
      } else {
        const dev = blockArea.readUInt32LE(4);
        devMajor = (dev & 0xfff00) >> 8;
        devMinor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
      }
    }
    return {
      ino,
      kind,
      mode: modeBits & 0o7777,
      uid: raw.readUInt16LE(0x02) | (raw.readUInt16LE(0x78) << 16),
      gid: raw.readUInt16LE(0x18) | (raw.readUInt16LE(0x7a) << 16),
      sizeBytes: raw.readUInt32LE(0x04) + raw.readUInt32LE(0x6c) * 2 ** 32,
      mtimeSec: raw.readUInt32LE(0x10),
      links: raw.readUInt16LE(0x1a),
      devMajor,
      devMinor,
      flags,
      blockArea,
      fileAclBlock: raw.readUInt32LE(0x68) + raw.readUInt16LE(0x76) * 2 ** 32,
      raw,
    };
  }

  /** The data runs of a file, directory or slow symlink, in logical order. */
  private async runs(inode: Ext4Inode): Promise<Run[]> {
    const out: Run[] = [];
    if (inode.flags & EXTENTS_FL) await this.extentRuns(inode.blockArea, 0, out);
    else await this.blockMapRuns(inode, out);
    out.sort((a, b) => a.logical - b.logical);
    for (let i = 1; i < out.length; i++) {
      const prev = out[i - 1] as Run;
      if ((out[i] as Run).logical < prev.logical + prev.length)
        this.fail(`inode ${inode.ino} has overlapping extents`);
    }
    return out;
  }

  private async extentRuns(node: Buffer, depth: number, out: Run[]): Promise<void> {
    if (depth > MAX_EXTENT_DEPTH) this.fail("extent tree too deep");
    if (node.length < 12 || node.readUInt16LE(0) !== EXTENT_MAGIC) this.fail("bad extent header");
    const entries = node.readUInt16LE(2);
    const level = node.readUInt16LE(6);
    if (12 + entries * 12 > node.length) this.fail("extent node overflows its block");
    for (let i = 0; i < entries; i++) {
      const e = node.subarray(12 + i * 12, 24 + i * 12);
      if (level === 0) {
        const rawLen = e.readUInt16LE(4);
        const zero = rawLen > UNINIT_LEN;
        const length = zero ? rawLen - UNINIT_LEN : rawLen;
        const physical = e.readUInt16LE(6) * 2 ** 32 + e.readUInt32LE(8);
        if (physical + length > this.sb.blocksCount) this.fail("extent outside the filesystem");
        out.push({ logical: e.readUInt32LE(0), physical, length, zero });
      } else {
        const child = e.readUInt32LE(4) + e.readUInt16LE(8) * 2 ** 32;
        await this.extentRuns(await this.readBlocks(child, 1), depth + 1, out);
      }
      if (out.length > 1_000_000) this.fail("too many extents");
    }
  }

  private async blockMapRuns(inode: Ext4Inode, out: Run[]): Promise<void> {
    const perBlock = this.sb.blockSize / 4;
    const blocks = Math.ceil(inode.sizeBytes / this.sb.blockSize);
    const push = (logical: number, physical: number): void => {
      if (physical === 0) return;
      if (physical >= this.sb.blocksCount) this.fail("block map points outside the filesystem");
      const last = out[out.length - 1];
      if (
        last &&
        last.logical + last.length === logical &&
        last.physical + last.length === physical
      )
        last.length++;
      else out.push({ logical, physical, length: 1, zero: false });
    };
    for (let i = 0; i < 12 && i < blocks; i++) push(i, inode.blockArea.readUInt32LE(i * 4));
    let logical = 12;
    const walk = async (block: number, level: number): Promise<void> => {
      if (block === 0) {
        logical += perBlock ** level;
        return;
      }
      const ptrs = await this.readBlocks(block, 1);
      for (let i = 0; i < perBlock && logical < blocks; i++) {
        const p = ptrs.readUInt32LE(i * 4);
        if (level === 1) push(logical++, p);
        else await walk(p, level - 1);
      }
    };
    for (let level = 1; level <= 3 && logical < blocks; level++)
      await walk(inode.blockArea.readUInt32LE((11 + level) * 4), level);
  }

  /** A file's bytes in chunks, holes and unwritten extents as zeros, exactly `sizeBytes` long. */
  async *content(inode: Ext4Inode): AsyncGenerator<Buffer> {
    const bs = this.sb.blockSize;
    let pos = 0;
    const size = inode.sizeBytes;
    const zeros = function* (upTo: number): Generator<Buffer> {
      while (pos < upTo) {
        const n = Math.min(upTo - pos, 1 << 20);
        pos += n;
        yield Buffer.alloc(n);
      }
    };
    for (const run of await this.runs(inode)) {
      const start = run.logical * bs;
      if (start >= size) break;
      yield* zeros(start);
      const end = Math.min(size, (run.logical + run.length) * bs);
      if (run.zero) {
        yield* zeros(end);
        continue;
      }
      while (pos < end) {
        const n = Math.min(end - pos, 1 << 20);
        yield await this.readAt(run.physical * bs + (pos - start), n);
        pos += n;
      }
    }
    yield* zeros(size);
  }

  async readAll(inode: Ext4Inode, limitBytes: number): Promise<Buffer> {
    if (inode.sizeBytes > limitBytes) this.fail(`inode ${inode.ino} is too large to read whole`);
    const chunks: Buffer[] = [];
    for await (const c of this.content(inode)) chunks.push(c);
    return Buffer.concat(chunks);
  }

  async symlinkTarget(inode: Ext4Inode): Promise<string> {
    if (inode.sizeBytes > MAX_SYMLINK_BYTES) this.fail(`symlink inode ${inode.ino} is too long`);
    const fast = !(inode.flags & EXTENTS_FL) && inode.sizeBytes < 60;
    const bytes = fast
      ? inode.blockArea.subarray(0, inode.sizeBytes)
      : await this.readAll(inode, MAX_SYMLINK_BYTES);
    return this.text(bytes, `symlink inode ${inode.ino}`);
  }

  /** A directory's entries other than `.` and `..`, in on-disk order. */
  async readDir(inode: Ext4Inode): Promise<Ext4DirEntry[]> {
    if (inode.kind !== "dir") this.fail(`inode ${inode.ino} is not a directory`);
    const data = await this.readAll(inode, MAX_DIR_BYTES);
    const bs = this.sb.blockSize;
    const out: Ext4DirEntry[] = [];
    for (let block = 0; block < data.length; block += bs) {
      let off = block;
      while (off + 8 <= block + bs) {
        const ino = data.readUInt32LE(off);
        const recLen = data.readUInt16LE(off + 4);
        const nameLen = this.sb.hasFiletype ? data[off + 6]! : data.readUInt16LE(off + 6);
        if (recLen < 8 || recLen % 4 !== 0 || off + recLen > block + bs || 8 + nameLen > recLen)
          this.fail(`directory inode ${inode.ino} has a malformed entry`);
        if (ino !== 0 && nameLen > 0) {
          const name = this.text(data.subarray(off + 8, off + 8 + nameLen), "a file name");
          if (name !== "." && name !== "..") {
            if (name.includes("/") || name.includes("\0"))
              this.fail(`directory inode ${inode.ino} has an invalid name`);
            out.push({ name, ino });
          }
        }
        off += recLen;
      }
    }
    return out;
  }

  /** Extended attributes: in the inode, then in its attribute block. */
  async xattrs(inode: Ext4Inode): Promise<Xattr[]> {
    const out: Xattr[] = [];
    if (this.sb.inodeSize > 128) {
      const extra = inode.raw.readUInt16LE(0x80);
      const start = 128 + extra;
      if (
        extra % 4 === 0 &&
        start + 4 <= inode.raw.length &&
        inode.raw.readUInt32LE(start) === 0xea020000
      )
        out.push(...parseXattrs(inode.raw.subarray(start + 4), 0, (w) => this.fail(w)));
    }
    if (inode.fileAclBlock !== 0) {
      const block = await this.readBlocks(inode.fileAclBlock, 1);
      if (block.readUInt32LE(0) !== 0xea020000) this.fail(`inode ${inode.ino}: bad xattr block`);
      out.push(...parseXattrs(block, 32, (w) => this.fail(w)));
    }
    return out;
  }

  /** Resolves a path from the root without following symlinks; undefined when absent. */
  async lookup(path: string): Promise<Ext4Inode | undefined> {
    let cur = await this.inode(ROOT_INO);
    for (const part of path.split("/").filter((p) => p !== "" && p !== ".")) {
      if (cur.kind !== "dir") return undefined;
      const entry = (await this.readDir(cur)).find((e) => e.name === part);
      if (!entry) return undefined;
      cur = await this.inode(entry.ino);
    }
    return cur;
  }

  private text(bytes: Buffer, what: string): string {
    try {
      return this.decoder.decode(bytes);
    } catch {
      return this.fail(`${what} is not valid UTF-8 (not supported in layers)`);
    }
  }
}
