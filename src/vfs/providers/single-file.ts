/**
 * One file of a directory provider, served as a mount of its own (`-v ./app.json:/etc/app.json`):
 * the mount's root "/" is the entry `name` of the inner provider, and nothing else of the inner
 * provider can be named. Wrap a host directory, read-only or overlay provider of the file's
 * parent directory: the guest reads, writes, truncates, chmods that one file, and can neither
 * see its siblings nor create, remove or rename anything.
 */
import { Errno, VfsError } from "../errors.js";
import { checkName } from "../names.js";
import type {
  VfsDirEntry,
  VfsHandle,
  VfsOpenFlags,
  VfsProvider,
  VfsSetattr,
  VfsStat,
  VfsStatfs,
} from "../provider.js";

/** Below a file nothing exists; every operation that names something else fails like it. */
const notDir = async (): Promise<never> => {
  throw new VfsError(Errno.ENOTDIR);
};

export class SingleFileProvider implements VfsProvider {
  readonly readOnly: boolean;
  private readonly innerPath: string;

  constructor(
    private readonly inner: VfsProvider,
    name: string,
  ) {
    checkName(name);
    this.innerPath = `/${name}`;
    this.readOnly = inner.readOnly;
  }

  /** The inner path for `path`, which must be the mount's root: the file itself. */
  private file(path: string): string {
    if (path !== "/" && path !== "") throw new VfsError(Errno.ENOTDIR);
    return this.innerPath;
  }

  async stat(path: string): Promise<VfsStat> {
    const stat = await this.inner.stat(this.file(path));
    // Replaced on the host by a directory or symlink since the mount was made: not ours to serve.
    if (stat.type !== "file") throw new VfsError(Errno.ENOENT);
    return stat;
  }

  readdir = notDir as (path: string) => Promise<VfsDirEntry[]>;

  open(path: string, flags: VfsOpenFlags): Promise<VfsHandle> {
    return this.inner.open(this.file(path), flags);
  }

  setattr(path: string, attrs: VfsSetattr): Promise<VfsStat> {
    return this.inner.setattr(this.file(path), attrs);
  }

  statfs(path: string): Promise<VfsStatfs> {
    return this.inner.statfs(path === "/" ? "/" : this.file(path));
  }

  create = notDir;
  mkdir = notDir;
  mknod = notDir;
  symlink = notDir;
  link = notDir;
  readlink = async (): Promise<never> => {
    throw new VfsError(Errno.EINVAL);
  };
  // The mount point itself cannot go away (the router answers EBUSY before it gets here).
  unlink = notDir;
  rmdir = notDir;
  rename = notDir;

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
