/**
 * Serves another provider read-only: every change is EROFS before it reaches the inner
 * provider, and handles refuse writes even if the guest kernel sends one on a read handle.
 */
import { Errno, VfsError } from "../errors.js";
import type {
  VfsDirEntry,
  VfsHandle,
  VfsOpenFlags,
  VfsProvider,
  VfsStat,
  VfsStatfs,
} from "../provider.js";

const erofs = async (): Promise<never> => {
  throw new VfsError(Errno.EROFS);
};

export class ReadOnlyProvider implements VfsProvider {
  readonly readOnly = true;

  constructor(private readonly inner: VfsProvider) {}

  stat(path: string): Promise<VfsStat> {
    return this.inner.stat(path);
  }

  readdir(path: string): Promise<VfsDirEntry[]> {
    return this.inner.readdir(path);
  }

  async open(path: string, flags: VfsOpenFlags): Promise<VfsHandle> {
    if (flags.write || flags.truncate || flags.append) throw new VfsError(Errno.EROFS);
    const handle = await this.inner.open(path, flags);
    return {
      read: (offset, lengthBytes) => handle.read(offset, lengthBytes),
      write: erofs,
      stat: () => handle.stat(),
      truncate: erofs,
      sync: async () => undefined,
      close: () => handle.close(),
    };
  }

  create = erofs;
  mkdir = erofs;
  mknod = erofs;
  unlink = erofs;
  rmdir = erofs;
  rename = erofs;
  link = erofs;
  symlink = erofs;
  setattr = erofs;

  readlink(path: string): Promise<string> {
    return this.inner.readlink(path);
  }

  statfs(path: string): Promise<VfsStatfs> {
    return this.inner.statfs(path);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
