/**
 * Serves several providers at several paths of one FUSE mount. The longest mount prefix
 * wins; ancestors of mount points that no provider serves appear as read-only synthetic
 * directories, and a directory listing shows the mount points below it. Renames and links
 * across providers are EXDEV, as between two real filesystems.
 */
import { Errno, VfsError } from "../errors.js";
import { isWithin, splitParent, splitPath } from "../names.js";
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

interface Mount {
  readonly path: string;
  readonly provider: VfsProvider;
}

interface Routed {
  readonly mount: Mount;
  readonly inner: string;
}

const SYNTHETIC_DIR: VfsStat = {
  type: "dir",
  mode: 0o755,
  sizeBytes: 4096,
  nlink: 2,
  uid: 0,
  gid: 0,
  atimeMs: 0,
  mtimeMs: 0,
  ctimeMs: 0,
};

export class RouterProvider implements VfsProvider {
  readonly readOnly = false;
  private readonly mounts: Mount[];

  /** `mounts` maps absolute paths inside this mount ("/" allowed) to providers. */
  constructor(mounts: ReadonlyMap<string, VfsProvider> | Record<string, VfsProvider>) {
    const entries = mounts instanceof Map ? [...mounts] : Object.entries(mounts);
    this.mounts = entries.map(([path, provider]) => {
      return { path: mountPathOf(path), provider };
    });
    const seen = new Set<string>();
    for (const m of this.mounts) {
      if (seen.has(m.path)) throw new Error(`two providers mounted at ${m.path}`);
      seen.add(m.path);
    }
    // Longest first, so the first match is the deepest mount.
    this.mounts.sort((a, b) => b.path.length - a.path.length);
  }

  private route(path: string): Routed | undefined {
    for (const mount of this.mounts) {
      if (!isWithin(path, mount.path)) continue;
      const rest = mount.path === "/" ? path : path.slice(mount.path.length);
      return { mount, inner: rest === "" ? "/" : rest };
    }
    return undefined;
  }

  private routed(path: string): Routed {
    const r = this.route(path);
    if (r !== undefined) return r;
    // Above every mount: only synthetic directories exist here, and nothing can change them
    // (nor can anything be created in them).
    const synthetic =
      this.isAncestor(path) || (path !== "/" && this.isSynthetic(splitParent(path).parent));
    throw new VfsError(synthetic ? Errno.EROFS : Errno.ENOENT);
  }

  private isSynthetic(path: string): boolean {
    return path === "/" || this.isAncestor(path);
  }

  private isAncestor(path: string): boolean {
    return this.mounts.some((m) => m.path !== path && isWithin(m.path, path));
  }

  /** Names of mount points (or their ancestors) directly below `path`. */
  private mountChildren(path: string): string[] {
    const names = new Set<string>();
    const depth = splitPath(path).length;
    for (const m of this.mounts) {
      if (m.path === path || !isWithin(m.path, path)) continue;
      const name = splitPath(m.path)[depth];
      if (name !== undefined) names.add(name);
    }
    return [...names];
  }

  async stat(path: string): Promise<VfsStat> {
    const r = this.route(path);
    if (r === undefined) {
      if (path === "/" || this.isAncestor(path)) return SYNTHETIC_DIR;
      throw new VfsError(Errno.ENOENT);
    }
    try {
      const stat = await r.mount.provider.stat(r.inner);
      // File ids are unique per provider only; two mounts may reuse the same ones.
      return stat.fileId === undefined
        ? stat
        : { ...stat, fileId: routedFileId(r.mount.path, stat.fileId) };
    } catch (err) {
      // An ancestor of a deeper mount exists even where the outer provider has nothing.
      if (err instanceof VfsError && err.errno === Errno.ENOENT && this.isAncestor(path)) {
        return SYNTHETIC_DIR;
      }
      throw err;
    }
  }

  async readdir(path: string): Promise<VfsDirEntry[]> {
    const r = this.route(path);
    const own =
      r === undefined
        ? []
        : await r.mount.provider.readdir(r.inner).catch((err: unknown) => {
            if (this.isAncestor(path)) return [];
            throw err;
          });
    const extra = this.mountChildren(path);
    if (r === undefined && extra.length === 0 && path !== "/") throw new VfsError(Errno.ENOENT);
    const hidden = new Set(extra);
    const shown = await Promise.all(
      extra.map(async (name): Promise<VfsDirEntry> => ({
        name,
        type: await this.mountType(path, name),
      })),
    );
    return [...own.filter((e) => !hidden.has(e.name)), ...shown];
  }

  /** A mount point's own type (a single-file mount is a file); ancestors are directories. */
  private async mountType(parent: string, name: string): Promise<VfsDirEntry["type"]> {
    const path = parent === "/" ? `/${name}` : `${parent}/${name}`;
    const mount = this.mounts.find((m) => m.path === path);
    if (mount === undefined) return "dir";
    try {
      return (await mount.provider.stat("/")).type;
    } catch {
      return "dir";
    }
  }

  open(path: string, flags: VfsOpenFlags): Promise<VfsHandle> {
    const r = this.routed(path);
    return r.mount.provider.open(r.inner, flags);
  }

  create(path: string, mode: number, flags: VfsOpenFlags, owner: VfsOwner): Promise<VfsHandle> {
    const r = this.routed(path);
    return r.mount.provider.create(r.inner, mode, flags, owner);
  }

  mkdir(path: string, mode: number, owner: VfsOwner): Promise<void> {
    const r = this.routed(path);
    return r.mount.provider.mkdir(r.inner, mode, owner);
  }

  mknod(path: string, type: "file" | "fifo", mode: number, owner: VfsOwner): Promise<void> {
    const r = this.routed(path);
    return r.mount.provider.mknod(r.inner, type, mode, owner);
  }

  async unlink(path: string): Promise<void> {
    const r = this.notMountPoint(path);
    return r.mount.provider.unlink(r.inner);
  }

  async rmdir(path: string): Promise<void> {
    const r = this.notMountPoint(path);
    return r.mount.provider.rmdir(r.inner);
  }

  async rename(from: string, to: string, mode: RenameMode): Promise<void> {
    const a = this.notMountPoint(from);
    const b = this.notMountPoint(to);
    if (a.mount !== b.mount) throw new VfsError(Errno.EXDEV);
    return a.mount.provider.rename(a.inner, b.inner, mode);
  }

  async link(from: string, to: string): Promise<void> {
    const a = this.routed(from);
    const b = this.notMountPoint(to);
    if (a.mount !== b.mount) throw new VfsError(Errno.EXDEV);
    return a.mount.provider.link(a.inner, b.inner);
  }

  symlink(target: string, path: string, owner: VfsOwner): Promise<void> {
    const r = this.routed(path);
    return r.mount.provider.symlink(target, r.inner, owner);
  }

  readlink(path: string): Promise<string> {
    const r = this.routed(path);
    return r.mount.provider.readlink(r.inner);
  }

  setattr(path: string, attrs: VfsSetattr): Promise<VfsStat> {
    const r = this.routed(path);
    return r.mount.provider.setattr(r.inner, attrs);
  }

  async statfs(path: string): Promise<VfsStatfs> {
    const r = this.route(path) ?? this.mounts[this.mounts.length - 1];
    if (r === undefined) throw new VfsError(Errno.ENOENT);
    return "inner" in r ? r.mount.provider.statfs(r.inner) : r.provider.statfs("/");
  }

  async close(): Promise<void> {
    await Promise.all(this.mounts.map((m) => m.provider.close?.()));
  }

  /** Mount points and their ancestors cannot be removed or renamed (EBUSY, like a real mount). */
  private notMountPoint(path: string): Routed {
    const r = this.routed(path);
    if (r.inner === "/" || this.isAncestor(path)) throw new VfsError(Errno.EBUSY);
    return r;
  }
}

/** The file id the router shows for `fileId` of the mount at `mountPath` (normalized). */
export function routedFileId(mountPath: string, fileId: string): string {
  return `${mountPathOf(mountPath)}\0${fileId}`;
}

function mountPathOf(path: string): string {
  const parts = splitPath(path);
  return parts.length === 0 ? "/" : `/${parts.join("/")}`;
}
