/**
 * A host directory served read-write to the guest. It never reads, writes or reveals a host
 * path outside its root, whatever the guest sends: every operation resolves beneath a pinned
 * root descriptor without following any symlink (host-dir-walk.ts), symlink targets are
 * stored verbatim and only ever interpreted by the guest kernel, and only regular files and
 * directories are ever opened (O_NONBLOCK, then fstat), so a FIFO or device cannot block or
 * reach anything. Set-id bits are stripped from modes the guest sets: a guest must not be
 * able to plant a setuid binary owned by the host user.
 */
import {
  chmodSync,
  closeSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  open as openCb,
  openSync,
  promises as fsp,
  readlinkSync,
  renameSync,
  rmdirSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  constants as fsc,
  type Stats,
} from "node:fs";
import { promisify } from "node:util";
import { ErrInvalidConfig } from "../../errors.js";
import { fileIdentity } from "../../util/index.js";
import { Errno, VfsError, asVfsError } from "../errors.js";
import { splitPath } from "../names.js";
import type {
  RenameMode,
  VfsDirEntry,
  VfsFileType,
  VfsHandle,
  VfsOpenFlags,
  VfsOwner,
  VfsProvider,
  VfsSetattr,
  VfsStat,
  VfsStatfs,
} from "../provider.js";
import { fileHandle } from "./host-file-handle.js";
import { O_PATH, inParent, openRoot, procPath, walkDir } from "./host-dir-walk.js";
import { SyncGate, type SyncGateOptions } from "./sync-gate.js";

const openAsync = promisify(openCb);

const SETID_BITS = 0o6000;

export interface HostDirOptions {
  /** Who files owned by the host user appear to belong to in the guest (default root:root). */
  readonly guestOwner?: VfsOwner;
  /**
   * What the root (or `entry`, a name directly in it) must be, as `dev:ino`
   * (src/util/file-identity.ts): a node checked the path, and a swap since is refused.
   */
  readonly expect?: { readonly identity: string; readonly entry?: string };
  /** When metadata calls run synchronously (sync-gate.ts); tests tune it. */
  readonly syncGate?: SyncGateOptions;
}

function fileType(st: Stats): VfsFileType {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isFIFO()) return "fifo";
  return "other";
}

function openFlags(flags: VfsOpenFlags): number {
  let bits = flags.write ? (flags.read ? fsc.O_RDWR : fsc.O_WRONLY) : fsc.O_RDONLY;
  if (flags.append) bits |= fsc.O_APPEND;
  if (flags.truncate && flags.write) bits |= fsc.O_TRUNC;
  return bits | fsc.O_NOFOLLOW | fsc.O_NONBLOCK;
}

export class HostDirProvider implements VfsProvider {
  readonly readOnly = false;
  private readonly hostUid = process.getuid?.() ?? -1;
  private readonly hostGid = process.getgid?.() ?? -1;
  private readonly guestOwner: VfsOwner;
  /** Metadata calls run on the event loop while they are fast (sync-gate.ts). */
  private readonly gate: SyncGate;

  private constructor(
    private readonly root: fsp.FileHandle,
    options: HostDirOptions,
  ) {
    this.guestOwner = options.guestOwner ?? { uid: 0, gid: 0 };
    this.gate = new SyncGate(options.syncGate);
  }

  /** One host call: synchronous while the gate is open, else through the thread pool. */
  private sys<T>(fast: () => T, slow: () => Promise<T>): Promise<T> {
    return this.gate.call(fast, slow);
  }

  /** Opens `rootPath` (which must be a directory; symlinks to it are resolved once, here). */
  static async open(rootPath: string, options: HostDirOptions = {}): Promise<HostDirProvider> {
    const root = await openRoot(await fsp.realpath(rootPath));
    const expect = options.expect;
    if (expect !== undefined) {
      // Checked on what was opened: the root descriptor (or the entry beneath it, not
      // followed), so no later rename of a parent changes what is served.
      const stat =
        expect.entry === undefined
          ? root.stat({ bigint: true })
          : fsp.lstat(procPath(root.fd, expect.entry), { bigint: true });
      const found = await stat.then(fileIdentity, () => "");
      if (found !== expect.identity) {
        await root.close();
        throw new ErrInvalidConfig(
          `host path ${rootPath}${expect.entry !== undefined ? `/${expect.entry}` : ""} ` +
            "is no longer the file that was checked (it was replaced)",
        );
      }
    }
    return new HostDirProvider(root, options);
  }

  private get rootFd(): number {
    return this.root.fd;
  }

  private toStat = (st: Stats): VfsStat => ({
    type: fileType(st),
    mode: st.mode & 0o7777,
    sizeBytes: st.size,
    nlink: st.nlink,
    uid: st.uid === this.hostUid ? this.guestOwner.uid : st.uid,
    gid: st.gid === this.hostGid ? this.guestOwner.gid : st.gid,
    atimeMs: st.atimeMs,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    ino: st.ino,
    fileId: `${st.dev}:${st.ino}`,
  });

  async stat(path: string): Promise<VfsStat> {
    return inParent(this.rootFd, path, async (entry, parentFd, name) =>
      this.toStat(
        name === undefined
          ? await this.sys(
              () => statSync(procPath(parentFd)),
              () => fsp.stat(procPath(parentFd)),
            )
          : await this.lstat(entry),
      ),
    );
  }

  private lstat(entry: string): Promise<Stats> {
    return this.sys(
      () => lstatSync(entry),
      () => fsp.lstat(entry),
    );
  }

  async readdir(path: string): Promise<VfsDirEntry[]> {
    const dir = await walkDir(this.rootFd, splitPath(path));
    try {
      const entries = await fsp.readdir(procPath(dir?.fd ?? this.rootFd), { withFileTypes: true });
      return entries.map((e) => ({
        name: e.name,
        type: e.isFile()
          ? "file"
          : e.isDirectory()
            ? "dir"
            : e.isSymbolicLink()
              ? "symlink"
              : e.isFIFO()
                ? "fifo"
                : "other",
      }));
    } catch (err) {
      throw asVfsError(err);
    } finally {
      await dir?.close().catch(() => undefined);
    }
  }

  private async openChecked(entry: string, bits: number, mode?: number): Promise<VfsHandle> {
    const fd = await this.sys(
      () => openSync(entry, bits, mode),
      () => openAsync(entry, bits, mode),
    );
    const file = fileHandle(fd, this.toStat, this.gate);
    try {
      const st = await file.stat();
      if (st.type === "dir") throw new VfsError(Errno.EISDIR);
      if (st.type !== "file") throw new VfsError(Errno.EACCES);
    } catch (err) {
      await file.close();
      throw asVfsError(err);
    }
    return file;
  }

  async open(path: string, flags: VfsOpenFlags): Promise<VfsHandle> {
    return inParent(this.rootFd, path, async (entry, _fd, name) => {
      if (name === undefined) throw new VfsError(Errno.EISDIR);
      return this.openChecked(entry, openFlags(flags));
    });
  }

  async create(path: string, mode: number, flags: VfsOpenFlags): Promise<VfsHandle> {
    return inParent(this.rootFd, path, async (entry, _fd, name) => {
      if (name === undefined) throw new VfsError(Errno.EEXIST);
      // O_EXCL: never opens an existing name, symlink or not.
      const bits = openFlags({ ...flags, truncate: false }) | fsc.O_CREAT | fsc.O_EXCL;
      return this.openChecked(entry, bits, mode & ~SETID_BITS & 0o7777);
    });
  }

  async mkdir(path: string, mode: number): Promise<void> {
    const bits = mode & ~SETID_BITS & 0o7777;
    await this.onEntry(path, (entry) =>
      this.sys(
        () => mkdirSync(entry, bits),
        () => fsp.mkdir(entry, bits),
      ),
    );
  }

  async mknod(path: string, type: "file" | "fifo", mode: number): Promise<void> {
    // Node cannot mkfifo, and a FIFO on the host is a way to stall host readers anyway.
    if (type === "fifo") throw new VfsError(Errno.EPERM);
    const handle = await this.create(path, mode, {
      read: false,
      write: true,
      append: false,
      truncate: false,
    });
    await handle.close();
  }

  async unlink(path: string): Promise<void> {
    await this.onEntry(path, (entry) =>
      this.sys(
        () => unlinkSync(entry),
        () => fsp.unlink(entry),
      ),
    );
  }

  async rmdir(path: string): Promise<void> {
    await this.onEntry(path, (entry) =>
      this.sys(
        () => rmdirSync(entry),
        () => fsp.rmdir(entry),
      ),
    );
  }

  async rename(from: string, to: string, mode: RenameMode): Promise<void> {
    // Node has no renameat2: EXCHANGE is refused, NOREPLACE is checked first (the race this
    // leaves can only lose a name inside the root, never reach outside it).
    if (mode === "exchange") throw new VfsError(Errno.EINVAL);
    await this.onEntry(from, (src) =>
      this.onEntry(to, async (dst) => {
        if (mode === "noreplace" && (await this.exists(dst))) throw new VfsError(Errno.EEXIST);
        await this.sys(
          () => renameSync(src, dst),
          () => fsp.rename(src, dst),
        );
      }),
    );
  }

  async link(from: string, to: string): Promise<void> {
    // link(2) does not follow a symlink in `from`, and both names are beneath the root, so a
    // hard link can only ever name a file that is already inside the root.
    await this.onEntry(from, async (src) => {
      if ((await this.lstat(src)).isDirectory()) throw new VfsError(Errno.EPERM);
      await this.onEntry(to, (dst) =>
        this.sys(
          () => linkSync(src, dst),
          () => fsp.link(src, dst),
        ),
      );
    });
  }

  async symlink(target: string, path: string): Promise<void> {
    await this.onEntry(path, (entry) =>
      this.sys(
        () => symlinkSync(target, entry),
        () => fsp.symlink(target, entry),
      ),
    );
  }

  async readlink(path: string): Promise<string> {
    return this.onEntry(path, (entry) =>
      this.sys(
        () => readlinkSync(entry),
        () => fsp.readlink(entry),
      ),
    );
  }

  async setattr(path: string, attrs: VfsSetattr): Promise<VfsStat> {
    if (attrs.mode === undefined && attrs.sizeBytes === undefined && splitPath(path).length > 0) {
      return this.setTimesOrOwner(path, attrs);
    }
    return this.withNode(path, async (fd) => {
      const node = procPath(fd);
      // The O_PATH descriptor itself: a symlink stays a symlink.
      const st = await this.sys(
        () => statSync(node),
        () => fsp.stat(node),
      );
      if (st.isSymbolicLink()) {
        if (attrs.mode !== undefined || attrs.sizeBytes !== undefined)
          throw new VfsError(Errno.EOPNOTSUPP);
      }
      this.checkChown(st, attrs);
      if (attrs.mode !== undefined) {
        const bits = attrs.mode & ~SETID_BITS & 0o7777;
        await this.sys(
          () => chmodSync(node, bits),
          () => fsp.chmod(node, bits),
        );
      }
      if (attrs.sizeBytes !== undefined) {
        if (!st.isFile()) throw new VfsError(st.isDirectory() ? Errno.EISDIR : Errno.EINVAL);
        const file = await fsp.open(node, fsc.O_WRONLY | fsc.O_NONBLOCK);
        try {
          await file.truncate(attrs.sizeBytes);
        } finally {
          await file.close();
        }
      }
      if (attrs.atimeMs !== undefined || attrs.mtimeMs !== undefined) {
        const atime = (attrs.atimeMs ?? st.atimeMs) / 1000;
        const mtime = (attrs.mtimeMs ?? st.mtimeMs) / 1000;
        if (st.isSymbolicLink()) {
          await this.sys(
            () => lutimesSync(node, atime, mtime),
            () => fsp.lutimes(node, atime, mtime),
          );
        } else {
          await this.sys(
            () => utimesSync(node, atime, mtime),
            () => fsp.utimes(node, atime, mtime),
          );
        }
      }
      return this.toStat(
        await this.sys(
          () => statSync(node),
          () => fsp.stat(node),
        ),
      );
    });
  }

  /** Runs `fn` with an O_PATH descriptor of `path` itself (never a symlink's target). */
  private withNode<T>(path: string, fn: (fd: number) => Promise<T>): Promise<T> {
    return inParent(this.rootFd, path, async (entryPath, _parentFd, name) => {
      if (name === undefined) return fn(this.rootFd);
      const bits = O_PATH | fsc.O_NOFOLLOW;
      const fd = await this.sys(
        () => openSync(entryPath, bits),
        () => openAsync(entryPath, bits),
      );
      try {
        return await fn(fd);
      } finally {
        closeSync(fd); // an O_PATH descriptor: no data to flush
      }
    });
  }

  /**
   * Times and owner checks (an untar's futimens and fchown, one each per file) need no
   * descriptor of the node: the parent is pinned and lutimes/lstat never follow the final
   * name, so a symlink planted there is acted on, never its target. Two thread-pool trips
   * (one for a chown check) instead of withNode's five.
   */
  private setTimesOrOwner(path: string, attrs: VfsSetattr): Promise<VfsStat> {
    return this.onEntry(path, async (entry) => {
      const bothTimes = attrs.atimeMs !== undefined && attrs.mtimeMs !== undefined;
      const needBefore = attrs.uid !== undefined || attrs.gid !== undefined || !bothTimes;
      const before = needBefore ? await this.lstat(entry) : undefined;
      if (before !== undefined) this.checkChown(before, attrs);
      if (attrs.atimeMs === undefined && attrs.mtimeMs === undefined && before !== undefined) {
        return this.toStat(before);
      }
      const atimeMs = attrs.atimeMs ?? before?.atimeMs ?? 0;
      const mtimeMs = attrs.mtimeMs ?? before?.mtimeMs ?? 0;
      await this.sys(
        () => lutimesSync(entry, atimeMs / 1000, mtimeMs / 1000),
        () => fsp.lutimes(entry, atimeMs / 1000, mtimeMs / 1000),
      );
      return this.toStat(await this.lstat(entry));
    });
  }

  /** The host user cannot give files away; a chown to the owner the guest already sees is a no-op. */
  private checkChown(st: Stats, attrs: VfsSetattr): void {
    const view = this.toStat(st);
    if (attrs.uid !== undefined && attrs.uid !== view.uid) throw new VfsError(Errno.EPERM);
    if (attrs.gid !== undefined && attrs.gid !== view.gid) throw new VfsError(Errno.EPERM);
  }

  private async exists(entry: string): Promise<boolean> {
    try {
      await this.lstat(entry);
      return true;
    } catch {
      return false;
    }
  }

  async statfs(): Promise<VfsStatfs> {
    const st = await fsp.statfs(procPath(this.rootFd));
    return {
      blockBytes: st.bsize,
      blocks: st.blocks,
      blocksFree: st.bfree,
      blocksAvailable: st.bavail,
      files: st.files,
      filesFree: st.ffree,
    };
  }

  async close(): Promise<void> {
    await this.root.close().catch(() => undefined);
  }

  /** Runs `fn` on the /proc path of a non-root entry (the root itself is never a target). */
  private async onEntry<T>(path: string, fn: (entry: string) => Promise<T>): Promise<T> {
    return inParent(this.rootFd, path, async (entry, _fd, name) => {
      if (name === undefined) throw new VfsError(Errno.EBUSY);
      return fn(entry);
    });
  }
}
