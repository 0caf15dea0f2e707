/**
 * The bookkeeping behind QuotaProvider: bytes and inodes in use against a budget, and what is
 * known about each regular file. Every method is synchronous, so a check and the update it
 * guards can never interleave with another request's.
 *
 * The model, close to a real filesystem's: a regular file is charged its size rounded up to
 * 4 KiB blocks (a sparse file its full size) and one inode, as long as it has a name or an
 * open handle; a directory, symlink or FIFO is charged one inode and one block.
 */
import { Errno, VfsError } from "../errors.js";
import type { VfsStat, VfsStatfs } from "../provider.js";
import { SerialQueue } from "../../util/index.js";

export interface VfsQuota {
  /** Bytes the layer may hold (file sizes rounded up to 4 KiB, 4 KiB per other node). */
  readonly sizeBytes: number;
  /** Files, directories, symlinks and FIFOs the layer may hold. */
  readonly inodes: number;
}

export const QUOTA_BLOCK_BYTES = 4096;
/** One inode per 16 KiB of budget: mkfs.ext4's default ratio. */
export const QUOTA_BYTES_PER_INODE = 16 * 1024;

/** A budget of `sizeBytes` with the inode count that goes with it (ext4's ratio, at least 64). */
export function quotaOfSize(sizeBytes: number, inodes?: number): VfsQuota {
  return {
    sizeBytes,
    inodes: inodes ?? Math.max(64, Math.floor(sizeBytes / QUOTA_BYTES_PER_INODE)),
  };
}

function clamp(value: number, max: number): number {
  return Math.min(max, Math.max(0, value));
}

function blocks(sizeBytes: number): number {
  return Math.ceil(sizeBytes / QUOTA_BLOCK_BYTES) * QUOTA_BLOCK_BYTES;
}

/** What the ledger knows about one regular file (all its names and handles share it). */
export interface FileCharge {
  readonly fileId: string;
  /** Never below the file's real size: the bytes it is charged for. */
  sizeBytes: number;
  links: number;
  /** Open handles: an unlinked file keeps its space until the last one closes. */
  handles: number;
  /** Ends of the writes in flight: a truncate settles no lower than these. */
  readonly writeEnds: number[];
  /** Truncates of this file, one at a time. */
  readonly truncates: SerialQueue;
}

export class QuotaLedger {
  private usedBytes = 0;
  private usedInodes = 0;
  private readonly files = new Map<string, FileCharge>();

  constructor(readonly quota: VfsQuota) {}

  /** Charges a new node (and `bytes`); ENOSPC if the budget does not allow it. */
  takeInode(bytes: number): void {
    if (this.usedInodes + 1 > this.quota.inodes) throw new VfsError(Errno.ENOSPC);
    if (this.usedBytes + bytes > this.quota.sizeBytes) throw new VfsError(Errno.ENOSPC);
    this.usedInodes++;
    this.usedBytes += bytes;
  }

  releaseInode(bytes: number): void {
    this.usedInodes--;
    this.usedBytes -= bytes;
  }

  /** A non-file node is gone (or, with `taken`, was never made). */
  releaseNode(): void {
    this.releaseInode(QUOTA_BLOCK_BYTES);
  }

  /**
   * The charge of the regular file `stat` describes. A file the ledger has not seen yet is
   * either one it just counted an inode for (created empty) or one that was there before the
   * layer was handed to the guest; either way its current size is taken as already counted,
   * so removing a file that predates the mount frees budget (the budget bounds growth).
   */
  file(stat: VfsStat): FileCharge {
    if (stat.fileId === undefined) throw new VfsError(Errno.EIO, "quota needs file ids");
    let charge = this.files.get(stat.fileId);
    if (charge === undefined) {
      charge = {
        fileId: stat.fileId,
        sizeBytes: stat.sizeBytes,
        links: stat.nlink,
        handles: 0,
        writeEnds: [],
        truncates: new SerialQueue(),
      };
      this.files.set(stat.fileId, charge);
    }
    return charge;
  }

  /** Raises the file's charge to `sizeBytes` (if above); ENOSPC if the budget does not allow it. */
  grow(file: FileCharge, sizeBytes: number): void {
    if (sizeBytes <= file.sizeBytes) return;
    const delta = blocks(sizeBytes) - blocks(file.sizeBytes);
    if (this.usedBytes + delta > this.quota.sizeBytes) throw new VfsError(Errno.ENOSPC);
    this.usedBytes += delta;
    file.sizeBytes = sizeBytes;
  }

  /** After a truncate to `sizeBytes`: lowers the charge, but not below writes still in flight. */
  settle(file: FileCharge, sizeBytes: number): void {
    const floor = Math.max(sizeBytes, ...file.writeEnds);
    if (floor >= file.sizeBytes) return;
    this.usedBytes -= blocks(file.sizeBytes) - blocks(floor);
    file.sizeBytes = floor;
  }

  /** Frees the file once it has neither a name nor an open handle. */
  release(file: FileCharge): void {
    if (file.links > 0 || file.handles > 0 || this.files.get(file.fileId) !== file) return;
    this.files.delete(file.fileId);
    this.releaseInode(blocks(file.sizeBytes));
  }

  statfs(): VfsStatfs {
    const total = Math.floor(this.quota.sizeBytes / QUOTA_BLOCK_BYTES);
    // Use goes below zero where the guest removed what predates the mount (host_fs).
    const free = clamp(total - Math.ceil(this.usedBytes / QUOTA_BLOCK_BYTES), total);
    return {
      blockBytes: QUOTA_BLOCK_BYTES,
      blocks: total,
      blocksFree: free,
      blocksAvailable: free,
      files: this.quota.inodes,
      filesFree: clamp(this.quota.inodes - this.usedInodes, this.quota.inodes),
    };
  }

  /** For tests and diagnostics: what is charged now. */
  get used(): { readonly bytes: number; readonly inodes: number } {
    return { bytes: this.usedBytes, inodes: this.usedInodes };
  }
}
