/**
 * The parts of an ext4 superblock and group descriptor table a reader needs. The disk may have
 * been written by an untrusted guest: every field is checked before it is used to compute an
 * offset, and features that change the on-disk layout in ways this reader does not implement
 * are refused with a message naming them.
 */
import { ErrBuild } from "../../errors.js";

const SUPERBLOCK_OFFSET = 1024;
const EXT4_MAGIC = 0xef53;

/** Incompatible features (s_feature_incompat) and whether this reader can handle them. */
const INCOMPAT = {
  compression: 0x1,
  filetype: 0x2,
  recover: 0x4,
  journalDev: 0x8,
  metaBg: 0x10,
  extents: 0x40,
  bit64: 0x80,
  mmp: 0x100,
  flexBg: 0x200,
  eaInode: 0x400,
  dirData: 0x1000,
  csumSeed: 0x2000,
  largeDir: 0x4000,
  inlineData: 0x8000,
  encrypt: 0x10000,
  casefold: 0x20000,
} as const;

const SUPPORTED_INCOMPAT =
  INCOMPAT.filetype |
  INCOMPAT.extents |
  INCOMPAT.bit64 |
  INCOMPAT.mmp |
  INCOMPAT.flexBg |
  INCOMPAT.eaInode |
  INCOMPAT.csumSeed |
  INCOMPAT.largeDir;

export interface Superblock {
  blockSize: number;
  inodesCount: number;
  blocksCount: number;
  inodesPerGroup: number;
  inodeSize: number;
  groupCount: number;
  /** Byte offset of the group descriptor table. */
  descTableOffset: number;
  descSize: number;
  hasFiletype: boolean;
  is64bit: boolean;
}

/** Parses and checks the superblock (the 1024 bytes at offset 1024). */
export function parseSuperblock(buf: Buffer, what: string): Superblock {
  const bad = (why: string): never => {
    throw new ErrBuild(`${what}: ${why}`);
  };
  if (buf.length < 1024) return bad("too small to hold an ext4 filesystem");
  if (buf.readUInt16LE(0x38) !== EXT4_MAGIC) return bad("not an ext4 filesystem");
  const logBlock = buf.readUInt32LE(0x18);
  if (logBlock > 6) return bad(`unsupported block size (log ${logBlock})`);
  const blockSize = 1024 << logBlock;
  const incompat = buf.readUInt32LE(0x60);
  if (incompat & INCOMPAT.recover)
    return bad("the filesystem was not unmounted cleanly (its journal needs recovery)");
  const unsupported = incompat & ~SUPPORTED_INCOMPAT;
  if (unsupported !== 0)
    return bad(`uses ext4 features this reader does not support (0x${unsupported.toString(16)})`);
  const is64bit = (incompat & INCOMPAT.bit64) !== 0;
  const inodesCount = buf.readUInt32LE(0x00);
  const blocksCount = buf.readUInt32LE(0x04) + (is64bit ? buf.readUInt32LE(0x150) * 2 ** 32 : 0);
  const firstDataBlock = buf.readUInt32LE(0x14);
  const blocksPerGroup = buf.readUInt32LE(0x20);
  const inodesPerGroup = buf.readUInt32LE(0x28);
  const revLevel = buf.readUInt32LE(0x4c);
  const inodeSize = revLevel === 0 ? 128 : buf.readUInt16LE(0x58);
  if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0)
    return bad(`implausible inode size ${inodeSize}`);
  if (blocksPerGroup === 0 || inodesPerGroup === 0) return bad("empty block groups");
  const groupCount = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
  if (groupCount <= 0 || groupCount * inodesPerGroup < inodesCount)
    return bad("inconsistent group counts");
  const descSize = is64bit ? buf.readUInt16LE(0xfe) : 32;
  if (descSize < 32 || descSize > blockSize || (descSize & (descSize - 1)) !== 0)
    return bad(`implausible group descriptor size ${descSize}`);
  return {
    blockSize,
    inodesCount,
    blocksCount,
    inodesPerGroup,
    inodeSize,
    groupCount,
    descTableOffset: (firstDataBlock + 1) * blockSize,
    descSize,
    hasFiletype: (incompat & INCOMPAT.filetype) !== 0,
    is64bit,
  };
}

export { SUPERBLOCK_OFFSET };
