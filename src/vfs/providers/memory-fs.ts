/**
 * The filesystem behind MemoryProvider: nodes in host memory with full POSIX name semantics
 * (hard links, symlinks, rename over existing entries, unlinked-but-open files). It has no
 * bound of its own; MemoryProvider puts a quota over it.
 */
import { Errno, VfsError } from "../errors.js";
import { splitParent, splitPath } from "../names.js";
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
import { ensureCapacity, memStat, newMeta, touch, type MemNode } from "./memory-node.js";

type FileNode = Extract<MemNode, { type: "file" }>;
type DirNode = Extract<MemNode, { type: "dir" }>;

export class MemoryFs implements VfsProvider {
  readonly readOnly = false;
  private readonly root: DirNode = {
    type: "dir",
    meta: newMeta(0o755, { uid: 0, gid: 0 }),
    children: new Map(),
  };
  private lookup(path: string): MemNode {
    let node: MemNode = this.root;
    for (const name of splitPath(path)) {
      if (node.type !== "dir") throw new VfsError(Errno.ENOTDIR);
      const child: MemNode | undefined = node.children.get(name);
      if (child === undefined) throw new VfsError(Errno.ENOENT);
      node = child;
    }
    return node;
  }

  private parentDir(path: string): { dir: DirNode; name: string } {
    const { parent, name } = splitParent(path);
    const dir = this.lookup(parent);
    if (dir.type !== "dir") throw new VfsError(Errno.ENOTDIR);
    return { dir, name };
  }

  private insert(path: string, node: MemNode): void {
    const { dir, name } = this.parentDir(path);
    if (dir.children.has(name)) throw new VfsError(Errno.EEXIST);
    dir.children.set(name, node);
    touch(dir.meta);
  }

  async stat(path: string): Promise<VfsStat> {
    return memStat(this.lookup(path));
  }

  async readdir(path: string): Promise<VfsDirEntry[]> {
    const node = this.lookup(path);
    if (node.type !== "dir") throw new VfsError(Errno.ENOTDIR);
    return [...node.children].map(([name, child]) => ({ name, type: child.type }));
  }

  async open(path: string, flags: VfsOpenFlags): Promise<VfsHandle> {
    const node = this.lookup(path);
    if (node.type === "dir") throw new VfsError(Errno.EISDIR);
    if (node.type !== "file") throw new VfsError(Errno.ELOOP);
    if (flags.truncate && flags.write) this.resize(node, 0);
    return this.handle(node, flags);
  }

  async create(
    path: string,
    mode: number,
    flags: VfsOpenFlags,
    owner: VfsOwner,
  ): Promise<VfsHandle> {
    const node: FileNode = {
      type: "file",
      meta: newMeta(mode, owner),
      data: Buffer.alloc(0),
      sizeBytes: 0,
    };
    this.insert(path, node);
    return this.handle(node, flags);
  }

  async mkdir(path: string, mode: number, owner: VfsOwner): Promise<void> {
    this.insert(path, { type: "dir", meta: newMeta(mode, owner), children: new Map() });
  }

  async mknod(path: string, type: "file" | "fifo", mode: number, owner: VfsOwner): Promise<void> {
    const meta = newMeta(mode, owner);
    this.insert(
      path,
      type === "fifo" ? { type, meta } : { type, meta, data: Buffer.alloc(0), sizeBytes: 0 },
    );
  }

  async symlink(target: string, path: string, owner: VfsOwner): Promise<void> {
    this.insert(path, { type: "symlink", meta: newMeta(0o777, owner), target });
  }

  async readlink(path: string): Promise<string> {
    const node = this.lookup(path);
    if (node.type !== "symlink") throw new VfsError(Errno.EINVAL);
    return node.target;
  }

  private removeEntry(path: string, wantDir: boolean): void {
    const { dir, name } = this.parentDir(path);
    const node = dir.children.get(name);
    if (node === undefined) throw new VfsError(Errno.ENOENT);
    if (wantDir && node.type !== "dir") throw new VfsError(Errno.ENOTDIR);
    if (!wantDir && node.type === "dir") throw new VfsError(Errno.EISDIR);
    if (node.type === "dir" && node.children.size > 0) throw new VfsError(Errno.ENOTEMPTY);
    dir.children.delete(name);
    touch(dir.meta);
    this.dropLink(node);
  }

  /** One name fewer; open handles keep the node object (and its bytes) alive. */
  private dropLink(node: MemNode): void {
    node.meta.nlink = Math.max(0, node.meta.nlink - 1);
    node.meta.ctimeMs = Date.now();
  }

  async unlink(path: string): Promise<void> {
    this.removeEntry(path, false);
  }

  async rmdir(path: string): Promise<void> {
    if (path === "/") throw new VfsError(Errno.EBUSY);
    this.removeEntry(path, true);
  }

  async rename(from: string, to: string, mode: RenameMode): Promise<void> {
    const src = this.parentDir(from);
    const dst = this.parentDir(to);
    const node = src.dir.children.get(src.name);
    if (node === undefined) throw new VfsError(Errno.ENOENT);
    if (to.startsWith(`${from}/`)) throw new VfsError(Errno.EINVAL);
    const existing = dst.dir.children.get(dst.name);
    if (existing === node) return;
    if (mode === "exchange") {
      if (existing === undefined) throw new VfsError(Errno.ENOENT);
      src.dir.children.set(src.name, existing);
      dst.dir.children.set(dst.name, node);
      return;
    }
    if (existing !== undefined) {
      if (mode === "noreplace") throw new VfsError(Errno.EEXIST);
      if (existing.type === "dir" && node.type !== "dir") throw new VfsError(Errno.EISDIR);
      if (existing.type !== "dir" && node.type === "dir") throw new VfsError(Errno.ENOTDIR);
      if (existing.type === "dir" && existing.children.size > 0)
        throw new VfsError(Errno.ENOTEMPTY);
      this.dropLink(existing);
    }
    src.dir.children.delete(src.name);
    dst.dir.children.set(dst.name, node);
    touch(src.dir.meta);
    touch(dst.dir.meta);
  }

  async link(from: string, to: string): Promise<void> {
    const node = this.lookup(from);
    if (node.type === "dir") throw new VfsError(Errno.EPERM);
    this.insert(to, node);
    node.meta.nlink++;
    node.meta.ctimeMs = Date.now();
  }

  async setattr(path: string, attrs: VfsSetattr): Promise<VfsStat> {
    const node = this.lookup(path);
    const m = node.meta;
    if (attrs.mode !== undefined) m.mode = attrs.mode & 0o7777;
    if (attrs.uid !== undefined) m.uid = attrs.uid;
    if (attrs.gid !== undefined) m.gid = attrs.gid;
    if (attrs.sizeBytes !== undefined) {
      if (node.type === "dir") throw new VfsError(Errno.EISDIR);
      if (node.type !== "file") throw new VfsError(Errno.EINVAL);
      this.resize(node, attrs.sizeBytes);
    }
    if (attrs.atimeMs !== undefined) m.atimeMs = attrs.atimeMs;
    if (attrs.mtimeMs !== undefined) m.mtimeMs = attrs.mtimeMs;
    m.ctimeMs = Date.now();
    return memStat(node);
  }

  /** Unbounded here: the quota over it answers for the mount. */
  async statfs(): Promise<VfsStatfs> {
    return {
      blockBytes: 4096,
      blocks: 0,
      blocksFree: 0,
      blocksAvailable: 0,
      files: 0,
      filesFree: 0,
    };
  }

  private resize(node: FileNode, sizeBytes: number): void {
    if (sizeBytes > node.sizeBytes) {
      ensureCapacity(node, sizeBytes);
      node.data.fill(0, node.sizeBytes, sizeBytes);
    }
    node.sizeBytes = sizeBytes;
    touch(node.meta);
  }

  private handle(node: FileNode, flags: VfsOpenFlags): VfsHandle {
    return {
      read: async (offset, lengthBytes) => {
        if (!flags.read) throw new VfsError(Errno.EBADF);
        const end = Math.min(node.sizeBytes, offset + lengthBytes);
        return offset >= end ? Buffer.alloc(0) : Buffer.from(node.data.subarray(offset, end));
      },
      write: async (offset, data) => {
        if (!flags.write) throw new VfsError(Errno.EBADF);
        const at = flags.append ? node.sizeBytes : offset;
        const end = at + data.length;
        if (end > node.sizeBytes) this.resize(node, end);
        data.copy(node.data, at);
        touch(node.meta);
        return data.length;
      },
      stat: async () => memStat(node),
      truncate: async (sizeBytes) => this.resize(node, sizeBytes),
      sync: async () => undefined,
      close: async () => undefined,
    };
  }
}
