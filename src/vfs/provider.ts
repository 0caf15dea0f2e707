/**
 * The provider interface: what a filesystem served to the guest must implement. The FUSE
 * server turns kernel requests into these calls, so a provider never sees FUSE messages.
 *
 * Paths: absolute within the provider, "/" for its root, components joined by "/". The server
 * only passes paths whose every component passed `checkName` (no "/", no NUL, not "." or "..",
 * at most 255 bytes), so providers can treat a path as a list of plain names. Providers that
 * touch the host must still not rely on that alone (see HostDirProvider).
 *
 * Errors: throw `VfsError(errno)` (or a Node system error with a `code`); anything else
 * reaches the guest as EIO.
 *
 * Semantics: `stat` never follows a symlink in the final component (lstat); the guest kernel
 * resolves symlinks itself through `readlink`. Every method may be called concurrently.
 */

export type VfsFileType = "file" | "dir" | "symlink" | "fifo" | "other";

export interface VfsStat {
  readonly type: VfsFileType;
  /** Permission bits (0o7777); the type comes from `type`. */
  readonly mode: number;
  readonly sizeBytes: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly atimeMs: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  /** Stable identity of the underlying file, when the provider has one (host inode number). */
  readonly ino?: number;
  /**
   * Identity of the file, unique within the provider (e.g. host "dev:ino"). Names with the
   * same fileId are hard links of one file: the server gives them one node id, so the guest
   * kernel caches one set of attributes. Omit when the provider cannot tell.
   */
  readonly fileId?: string;
}

export interface VfsDirEntry {
  readonly name: string;
  readonly type: VfsFileType;
}

export interface VfsStatfs {
  readonly blockBytes: number;
  readonly blocks: number;
  readonly blocksFree: number;
  readonly blocksAvailable: number;
  readonly files: number;
  readonly filesFree: number;
}

export interface VfsSetattr {
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly sizeBytes?: number;
  readonly atimeMs?: number;
  readonly mtimeMs?: number;
}

/** Open flags a provider must honour; other bits from the guest are dropped by the server. */
export interface VfsOpenFlags {
  readonly read: boolean;
  readonly write: boolean;
  readonly append: boolean;
  readonly truncate: boolean;
}

/** An open regular file. Offsets are absolute; no handle keeps a file position. */
export interface VfsHandle {
  /** Up to `lengthBytes` from `offset`; fewer (or none) only at end of file. */
  read(offset: number, lengthBytes: number): Promise<Buffer>;
  /** Returns the number of bytes written (all of `data` unless an error is thrown). */
  write(offset: number, data: Buffer): Promise<number>;
  stat(): Promise<VfsStat>;
  truncate(sizeBytes: number): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
  /**
   * Writes may fail for lack of space in normal use (a quota, a memory mount's budget): the
   * guest's FUSE relay must not answer them before the host did (no write-behind for this
   * file), or a program that ignores close()'s error would lose data without a word.
   */
  readonly spaceLimited?: boolean;
}

/** The guest caller that creates a node; providers that can't set owners may ignore it. */
export interface VfsOwner {
  readonly uid: number;
  readonly gid: number;
}

export type RenameMode = "replace" | "noreplace" | "exchange";

/** The guest process behind one FUSE request. */
export interface VfsCaller {
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
}

export interface VfsProvider {
  readonly readOnly: boolean;
  stat(path: string): Promise<VfsStat>;
  readdir(path: string): Promise<VfsDirEntry[]>;
  /** Opens an existing regular file (EISDIR for directories, ELOOP for symlinks). */
  open(path: string, flags: VfsOpenFlags): Promise<VfsHandle>;
  /** Creates a regular file that must not exist yet (EEXIST) and opens it. */
  create(path: string, mode: number, flags: VfsOpenFlags, owner: VfsOwner): Promise<VfsHandle>;
  mkdir(path: string, mode: number, owner: VfsOwner): Promise<void>;
  /** Creates a FIFO or an empty regular file (`type`); device nodes are never offered. */
  mknod(path: string, type: "file" | "fifo", mode: number, owner: VfsOwner): Promise<void>;
  unlink(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  rename(from: string, to: string, mode: RenameMode): Promise<void>;
  /** Hard link: a new name `to` for the existing non-directory `from`. */
  link(from: string, to: string): Promise<void>;
  /** Stores `target` verbatim; it is only ever interpreted by the guest kernel. */
  symlink(target: string, path: string, owner: VfsOwner): Promise<void>;
  readlink(path: string): Promise<string>;
  setattr(path: string, attrs: VfsSetattr): Promise<VfsStat>;
  statfs(path: string): Promise<VfsStatfs>;
  /** Releases what the provider holds (temp dirs, descriptors). */
  close?(): Promise<void>;
  /**
   * Optional: this provider as seen by one guest request's caller. The server calls it once
   * per request when present (hooks use it to know who asked); most providers leave it out.
   */
  forCaller?(caller: VfsCaller): VfsProvider;
}

export const READ_ONLY_FLAGS: VfsOpenFlags = {
  read: true,
  write: false,
  append: false,
  truncate: false,
};
