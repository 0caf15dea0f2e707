/**
 * A byte and inode budget over a writable provider (an overlay's upper layer, a memory
 * filesystem, optionally a host directory): whatever the guest does, the layer never holds
 * more than the budget, and `statfs` (the guest's `df`) reports the budget, not the host's
 * disk. Anything beyond it fails with ENOSPC, as on a full disk.
 *
 * Accounting (quota-ledger.ts) follows files, not names: hard links share one charge, a
 * rename over a file frees the file it replaced, and an unlinked file stays charged until its
 * last handle closes (its space on the host is only freed then). Every change of names runs
 * one at a time, so the stat before it and the change itself describe the same node; writes
 * reserve their end before they start, so concurrent writers cannot each pass the check with
 * the same free space. A write is all or nothing: one that does not fit fails whole.
 *
 * The inner provider must give file ids (`VfsStat.fileId`); the host-dir and memory ones do.
 */
import type {
  RenameMode,
  VfsDirEntry,
  VfsHandle,
  VfsOpenFlags,
  VfsOwner,
  VfsProvider,
  VfsSetattr,
  VfsStat,
  VfsStatfs,
} from "../provider.js";
import { SerialQueue } from "../../util/index.js";
import { QUOTA_BLOCK_BYTES, QuotaLedger, type FileCharge, type VfsQuota } from "./quota-ledger.js";

const WRITE_ONLY: VfsOpenFlags = { read: false, write: true, append: false, truncate: false };

export class QuotaProvider implements VfsProvider {
  readonly readOnly = false;
  protected readonly ledger: QuotaLedger;
  private readonly names = new SerialQueue();

  constructor(
    private readonly inner: VfsProvider,
    quota: VfsQuota,
  ) {
    this.ledger = new QuotaLedger(quota);
  }

  /** Bytes and inodes charged now. */
  get used(): { readonly bytes: number; readonly inodes: number } {
    return this.ledger.used;
  }

  stat(path: string): Promise<VfsStat> {
    return this.inner.stat(path);
  }

  readdir(path: string): Promise<VfsDirEntry[]> {
    return this.inner.readdir(path);
  }

  readlink(path: string): Promise<string> {
    return this.inner.readlink(path);
  }

  async statfs(): Promise<VfsStatfs> {
    return this.ledger.statfs();
  }

  async open(path: string, flags: VfsOpenFlags): Promise<VfsHandle> {
    // O_TRUNC goes through the handle's truncate, which is what keeps the charge right.
    const handle = await this.track(
      await this.inner.open(path, { ...flags, truncate: false }),
      flags,
    );
    if (!(flags.truncate && flags.write)) return handle;
    try {
      await handle.truncate(0);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return handle;
  }

  create(path: string, mode: number, flags: VfsOpenFlags, owner: VfsOwner): Promise<VfsHandle> {
    return this.names.run(async () => {
      const inner = await this.newNode(0, () => this.inner.create(path, mode, flags, owner));
      return this.track(inner, flags);
    });
  }

  mkdir(path: string, mode: number, owner: VfsOwner): Promise<void> {
    return this.names.run(() =>
      this.newNode(QUOTA_BLOCK_BYTES, () => this.inner.mkdir(path, mode, owner)),
    );
  }

  mknod(path: string, type: "file" | "fifo", mode: number, owner: VfsOwner): Promise<void> {
    const bytes = type === "file" ? 0 : QUOTA_BLOCK_BYTES;
    return this.names.run(() =>
      this.newNode(bytes, () => this.inner.mknod(path, type, mode, owner)),
    );
  }

  symlink(target: string, path: string, owner: VfsOwner): Promise<void> {
    return this.names.run(() =>
      this.newNode(QUOTA_BLOCK_BYTES, () => this.inner.symlink(target, path, owner)),
    );
  }

  link(from: string, to: string): Promise<void> {
    return this.names.run(async () => {
      const stat = await this.inner.stat(from);
      await this.inner.link(from, to);
      if (stat.type === "file") this.ledger.file(stat).links = stat.nlink + 1;
    });
  }

  unlink(path: string): Promise<void> {
    return this.names.run(async () => {
      const stat = await this.inner.stat(path);
      await this.inner.unlink(path);
      this.gone(stat);
    });
  }

  rmdir(path: string): Promise<void> {
    return this.names.run(async () => {
      await this.inner.rmdir(path);
      this.ledger.releaseNode();
    });
  }

  rename(from: string, to: string, mode: RenameMode): Promise<void> {
    if (mode === "exchange") return this.names.run(() => this.inner.rename(from, to, mode));
    return this.names.run(async () => {
      const src = await this.inner.stat(from);
      const replaced = await this.inner.stat(to).catch(() => undefined);
      await this.inner.rename(from, to, mode);
      // Renaming a name onto another name of the same file changes nothing.
      if (replaced !== undefined && src.fileId !== replaced.fileId) {
        this.gone(replaced);
      }
    });
  }

  async setattr(path: string, attrs: VfsSetattr): Promise<VfsStat> {
    const { sizeBytes, ...rest } = attrs;
    if (sizeBytes === undefined) return this.inner.setattr(path, attrs);
    // A truncate by path goes through a handle too: one code path keeps the charge right.
    const handle = await this.open(path, WRITE_ONLY);
    try {
      await handle.truncate(sizeBytes);
    } finally {
      await handle.close();
    }
    return Object.keys(rest).length > 0 ? this.inner.setattr(path, rest) : this.inner.stat(path);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }

  /** Charges a node, makes it, and refunds the charge if making it failed. */
  private async newNode<T>(bytes: number, make: () => Promise<T>): Promise<T> {
    this.ledger.takeInode(bytes);
    try {
      return await make();
    } catch (err) {
      this.ledger.releaseInode(bytes);
      throw err;
    }
  }

  /** A name is gone: a directory or other node is freed, a file loses one link. */
  private gone(stat: VfsStat): void {
    if (stat.type !== "file") {
      this.ledger.releaseNode();
      return;
    }
    const file = this.ledger.file(stat);
    file.links = stat.nlink - 1;
    this.ledger.release(file);
  }

  private async track(inner: VfsHandle, flags: VfsOpenFlags): Promise<VfsHandle> {
    let file: FileCharge;
    try {
      file = this.ledger.file(await inner.stat());
    } catch (err) {
      await inner.close();
      throw err;
    }
    file.handles++;
    return chargedHandle(inner, flags, file, this.ledger);
  }
}

function chargedHandle(
  inner: VfsHandle,
  flags: VfsOpenFlags,
  file: FileCharge,
  ledger: QuotaLedger,
): VfsHandle {
  let closed = false;
  return {
    spaceLimited: true,
    read: (offset, lengthBytes) => inner.read(offset, lengthBytes),
    write: async (offset, data) => {
      if (data.length === 0) return inner.write(offset, data);
      // An append lands at the real end, which the charge never undercuts.
      const end = (flags.append ? file.sizeBytes : offset) + data.length;
      ledger.grow(file, end);
      file.writeEnds.push(end);
      try {
        return await inner.write(offset, data);
      } finally {
        file.writeEnds.splice(file.writeEnds.indexOf(end), 1);
      }
    },
    stat: () => inner.stat(),
    truncate: (sizeBytes) =>
      file.truncates.run(async () => {
        ledger.grow(file, sizeBytes);
        await inner.truncate(sizeBytes);
        ledger.settle(file, sizeBytes);
      }),
    sync: () => inner.sync(),
    close: async () => {
      if (closed) return;
      closed = true;
      try {
        await inner.close();
      } finally {
        file.handles--;
        ledger.release(file);
      }
    },
  };
}
