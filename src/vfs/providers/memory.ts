/**
 * A filesystem in host memory, bounded by a byte and inode budget (ENOSPC beyond) so a guest
 * cannot grow the host process without limit. Host memory in use stays within about twice
 * `maxBytes` (file buffers grow geometrically) plus a few hundred bytes per inode.
 */
import {
  exportTree,
  importTree,
  rootEntry,
  type BlobSink,
  type BlobSource,
  type CopyableContents,
  type MountImage,
} from "../tree-image.js";
import { MemoryFs } from "./memory-fs.js";
import { QuotaProvider } from "./quota.js";
import { quotaOfSize } from "./quota-ledger.js";

/** The budget of a memory mount nobody sized: 256 MiB. */
export const DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024;

export interface MemoryProviderOptions {
  /** Bytes the provider may hold (default 256 MiB; file sizes rounded up to 4 KiB). */
  readonly maxBytes?: number;
  /** Files, directories and symlinks it may hold (default one per 16 KiB of `maxBytes`). */
  readonly maxInodes?: number;
}

export class MemoryProvider extends QuotaProvider implements CopyableContents {
  constructor(options: MemoryProviderOptions = {}) {
    super(new MemoryFs(), quotaOfSize(options.maxBytes ?? DEFAULT_MEMORY_BYTES, options.maxInodes));
  }

  /** The whole tree (call while nothing writes it: a sandbox's guest stopped). */
  async exportContents(sink: BlobSink): Promise<MountImage> {
    return { kind: "memory", root: await rootEntry(this), entries: await exportTree(this, sink) };
  }

  /** Into this (empty) provider, through the quota: a copy holds no more than its original. */
  async importContents(image: MountImage, source: BlobSource): Promise<Map<string, string>> {
    if (image.kind !== "memory") throw new Error(`a ${image.kind} image is not a memory mount's`);
    const renamed = await importTree(this, image.entries, source);
    const { root } = image;
    await this.setattr("/", root);
    return renamed;
  }
}
