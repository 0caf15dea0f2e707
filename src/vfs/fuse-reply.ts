/** Encoders for the replies the server sends (little-endian, layouts of linux/fuse.h 7.31). */
import {
  FUSE_KERNEL_VERSION,
  OUT_HEADER_BYTES,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
} from "./fuse-constants.js";
import type { VfsFileType, VfsStat, VfsStatfs } from "./provider.js";

export const ATTR_BYTES = 88;
export const ENTRY_OUT_BYTES = 40 + ATTR_BYTES;
export const ATTR_OUT_BYTES = 16 + ATTR_BYTES;
export const OPEN_OUT_BYTES = 16;
export const INIT_OUT_BYTES = 64;
export const STATFS_OUT_BYTES = 80;
const DIRENT_HEADER_BYTES = 24;

export function typeBits(type: VfsFileType): number {
  switch (type) {
    case "dir":
      return S_IFDIR;
    case "symlink":
      return S_IFLNK;
    case "fifo":
      return S_IFIFO;
    default:
      return S_IFREG;
  }
}

/** d_type values (DT_*) for readdir. */
export function direntType(type: VfsFileType): number {
  return typeBits(type) >> 12;
}

export function outHeader(unique: bigint, error: number, payloadBytes: number): Buffer {
  const header = Buffer.alloc(OUT_HEADER_BYTES);
  header.writeUInt32LE(OUT_HEADER_BYTES + payloadBytes, 0);
  header.writeInt32LE(error, 4);
  header.writeBigUInt64LE(unique, 8);
  return header;
}

/** A whole reply: header and payload in one buffer, so the relay writes it in one piece. */
export function reply(unique: bigint, payload: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([outHeader(unique, 0, payload.length), payload]);
}

/**
 * A message for the guest's FUSE relay, never for the kernel: unique 0 (like a notification)
 * and a positive private `code` (RELAY_* in fuse-constants.ts) where a reply has its error.
 */
export function relayMessage(code: number, body: Buffer): Buffer {
  return Buffer.concat([outHeader(0n, code, body.length), body]);
}

export function errorReply(unique: bigint, errno: number): Buffer {
  return outHeader(unique, -errno, 0);
}

function splitMs(ms: number): [bigint, number] {
  const safe = Number.isFinite(ms) && ms > 0 ? ms : 0;
  const seconds = Math.floor(safe / 1000);
  return [BigInt(seconds), Math.floor((safe - seconds * 1000) * 1e6)];
}

export function writeAttr(buf: Buffer, at: number, ino: bigint, stat: VfsStat): void {
  const [atime, atimeNs] = splitMs(stat.atimeMs);
  const [mtime, mtimeNs] = splitMs(stat.mtimeMs);
  const [ctime, ctimeNs] = splitMs(stat.ctimeMs);
  buf.writeBigUInt64LE(ino, at);
  buf.writeBigUInt64LE(BigInt(stat.sizeBytes), at + 8);
  buf.writeBigUInt64LE(BigInt(Math.ceil(stat.sizeBytes / 512)), at + 16);
  buf.writeBigUInt64LE(atime, at + 24);
  buf.writeBigUInt64LE(mtime, at + 32);
  buf.writeBigUInt64LE(ctime, at + 40);
  buf.writeUInt32LE(atimeNs, at + 48);
  buf.writeUInt32LE(mtimeNs, at + 52);
  buf.writeUInt32LE(ctimeNs, at + 56);
  buf.writeUInt32LE(typeBits(stat.type) | (stat.mode & 0o7777), at + 60);
  buf.writeUInt32LE(Math.max(1, stat.nlink), at + 64);
  buf.writeUInt32LE(stat.uid >>> 0, at + 68);
  buf.writeUInt32LE(stat.gid >>> 0, at + 72);
  buf.writeUInt32LE(0, at + 76); // rdev: we never expose device nodes
  buf.writeUInt32LE(4096, at + 80); // blksize
  buf.writeUInt32LE(0, at + 84);
}

export interface CacheTimeouts {
  readonly entryMs: number;
  readonly attrMs: number;
}

export function entryOut(nodeid: bigint, stat: VfsStat, timeouts: CacheTimeouts): Buffer {
  const buf = Buffer.alloc(ENTRY_OUT_BYTES);
  const [entry, entryNs] = splitMs(timeouts.entryMs);
  const [attr, attrNs] = splitMs(timeouts.attrMs);
  buf.writeBigUInt64LE(nodeid, 0);
  buf.writeBigUInt64LE(0n, 8); // generation: nodeids are never reused within a mount
  buf.writeBigUInt64LE(entry, 16);
  buf.writeBigUInt64LE(attr, 24);
  buf.writeUInt32LE(entryNs, 32);
  buf.writeUInt32LE(attrNs, 36);
  writeAttr(buf, 40, nodeid, stat);
  return buf;
}

/**
 * "No such name", cacheable: nodeid 0 with an entry timeout makes the kernel keep a negative
 * dentry, so repeated misses (PATH searches, git probing for files) stop crossing to the host.
 * The caller sees ENOENT exactly as with an error reply.
 */
export function negativeEntryOut(timeouts: CacheTimeouts): Buffer {
  const buf = Buffer.alloc(ENTRY_OUT_BYTES);
  const [entry, entryNs] = splitMs(timeouts.entryMs);
  buf.writeBigUInt64LE(entry, 16);
  buf.writeUInt32LE(entryNs, 32);
  return buf;
}

export function attrOut(nodeid: bigint, stat: VfsStat, timeouts: CacheTimeouts): Buffer {
  const buf = Buffer.alloc(ATTR_OUT_BYTES);
  const [attr, attrNs] = splitMs(timeouts.attrMs);
  buf.writeBigUInt64LE(attr, 0);
  buf.writeUInt32LE(attrNs, 8);
  writeAttr(buf, 16, nodeid, stat);
  return buf;
}

export function openOut(fh: bigint, openFlags: number): Buffer {
  const buf = Buffer.alloc(OPEN_OUT_BYTES);
  buf.writeBigUInt64LE(fh, 0);
  buf.writeUInt32LE(openFlags, 8);
  return buf;
}

export function writeOut(sizeBytes: number): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeUInt32LE(sizeBytes, 0);
  return buf;
}

export function statfsOut(stat: VfsStatfs, nameMaxBytes: number): Buffer {
  const buf = Buffer.alloc(STATFS_OUT_BYTES);
  buf.writeBigUInt64LE(BigInt(stat.blocks), 0);
  buf.writeBigUInt64LE(BigInt(stat.blocksFree), 8);
  buf.writeBigUInt64LE(BigInt(stat.blocksAvailable), 16);
  buf.writeBigUInt64LE(BigInt(stat.files), 24);
  buf.writeBigUInt64LE(BigInt(stat.filesFree), 32);
  buf.writeUInt32LE(stat.blockBytes, 40);
  buf.writeUInt32LE(nameMaxBytes, 44);
  buf.writeUInt32LE(stat.blockBytes, 48);
  return buf;
}

export interface InitReply {
  readonly minor: number;
  readonly maxReadaheadBytes: number;
  readonly flags: number;
  readonly maxBackground: number;
  readonly maxWriteBytes: number;
  readonly maxPages: number;
}

export function initOut(init: InitReply): Buffer {
  const buf = Buffer.alloc(INIT_OUT_BYTES);
  buf.writeUInt32LE(FUSE_KERNEL_VERSION, 0);
  buf.writeUInt32LE(init.minor, 4);
  buf.writeUInt32LE(init.maxReadaheadBytes, 8);
  buf.writeUInt32LE(init.flags >>> 0, 12);
  buf.writeUInt16LE(init.maxBackground, 16);
  buf.writeUInt16LE(Math.floor((init.maxBackground * 3) / 4), 18); // congestion_threshold
  buf.writeUInt32LE(init.maxWriteBytes, 20);
  buf.writeUInt32LE(1, 24); // time_gran: nanoseconds
  buf.writeUInt16LE(init.maxPages, 28);
  return buf;
}

/** One fuse_dirent (8-byte aligned), or undefined when it does not fit in `spaceBytes`. */
export function dirent(
  ino: bigint,
  nextOffset: number,
  name: string,
  type: VfsFileType,
  spaceBytes: number,
): Buffer | undefined {
  const nameBytes = Buffer.from(name);
  const size = (DIRENT_HEADER_BYTES + nameBytes.length + 7) & ~7;
  if (size > spaceBytes) return undefined;
  const buf = Buffer.alloc(size);
  buf.writeBigUInt64LE(ino, 0);
  buf.writeBigUInt64LE(BigInt(nextOffset), 8);
  buf.writeUInt32LE(nameBytes.length, 16);
  buf.writeUInt32LE(direntType(type), 20);
  nameBytes.copy(buf, DIRENT_HEADER_BYTES);
  return buf;
}
