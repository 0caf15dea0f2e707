/**
 * File hooks and file events: the public types. A rule picks operations by kind and guest path
 * glob and then allows, blocks (with an errno), rewrites write data, or calls your code
 * before (may veto) or after (observes) the operation. See docs/FILESYSTEM.md.
 */

/**
 * A file operation as hooks and events name it. `setattr` covers every attribute change;
 * `chmod`, `chown`, `truncate` and `utimes` name its parts (a rule for `setattr` matches all).
 */
export type FileOp =
  | "stat"
  | "readdir"
  | "open"
  | "create"
  | "read"
  | "write"
  | "mkdir"
  | "mknod"
  | "unlink"
  | "rmdir"
  | "rename"
  | "link"
  | "symlink"
  | "readlink"
  | "setattr"
  | "chmod"
  | "chown"
  | "truncate"
  | "utimes";

export const FILE_OPS: readonly FileOp[] = [
  "stat",
  "readdir",
  "open",
  "create",
  "read",
  "write",
  "mkdir",
  "mknod",
  "unlink",
  "rmdir",
  "rename",
  "link",
  "symlink",
  "readlink",
  "setattr",
  "chmod",
  "chown",
  "truncate",
  "utimes",
];

/** Errnos a block may return to the guest (names as in errno(3)). */
export type FileErrnoName =
  | "EPERM"
  | "EACCES"
  | "EROFS"
  | "ENOENT"
  | "EIO"
  | "ENOSPC"
  | "EDQUOT"
  | "EBUSY"
  | "EEXIST"
  | "EINVAL"
  | "ENOTSUP";

/** One operation as a before-hook sees it (the operation has not happened yet). */
export interface FileOpInfo {
  /** The most specific op name (a `chmod`, not `setattr`). */
  readonly op: FileOp;
  /** Absolute guest path. */
  readonly path: string;
  /** rename/link: the new name; symlink: the link target as the guest wrote it. */
  readonly newPath?: string;
  /** read/write: the byte offset. */
  readonly offset?: number;
  /** read/write/truncate: bytes asked for, written, or the new size. */
  readonly size?: number;
  /** create/mkdir/mknod/chmod: the requested permission bits. */
  readonly mode?: number;
  /** write only: the data about to be written. */
  readonly data?: Buffer;
  /** The guest caller (absent for SDK file calls, which have no guest caller). */
  readonly uid?: number;
  readonly gid?: number;
  readonly pid?: number;
  /** `guest` for requests from the VM's kernel, `api` for the SDK file methods. */
  readonly origin: "guest" | "api";
}

/** What happened: one file event, as in `sandbox.events()` and after-hooks. */
export interface FileEventInfo {
  readonly op: FileOp;
  readonly path: string;
  readonly newPath?: string;
  /**
   * Bytes: read/write totals for the handle (reads and writes are reported once per open
   * handle, at close or fsync, not once per request), the new size for truncate.
   */
  readonly size?: number;
  /** read/write: how many requests the totals add up. */
  readonly count?: number;
  /** Permission bits requested or resulting, where the operation has them. */
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly pid?: number;
  readonly origin: "guest" | "api";
  /** 0 on success, else the errno the guest got. */
  readonly errno: number;
  /** True when a hook rule refused the operation (`errno` says with what). */
  readonly blocked: boolean;
}

/** A before-hook's answer: nothing or "allow" lets it run; "block" refuses it. */
export type FileHookVerdict =
  void | undefined | "allow" | "block" | { readonly block: FileErrnoName | number };

export interface FileHookRule {
  /** For messages and events only. */
  readonly name?: string;
  /** Operations the rule applies to. Default: all. */
  readonly ops?: readonly FileOp[];
  /** Guest path glob(s): `*` stays in one directory, `**` crosses them. Default: all paths. */
  readonly path?: string | readonly string[];
  /**
   * `allow` and `block` end the evaluation (the first such rule that matches wins);
   * `mutate-write` rewrites write data with `mutate` and evaluation goes on. Default: none
   * (the rule only runs its callbacks).
   */
  readonly action?: "allow" | "block" | "mutate-write";
  /** For `block`: the errno the guest gets. Default EPERM. */
  readonly errno?: FileErrnoName;
  /** For `mutate-write`: returns the bytes to write instead (undefined keeps them). */
  readonly mutate?: (
    write: FileOpInfo & { readonly data: Buffer },
  ) => Buffer | Uint8Array | string | undefined | Promise<Buffer | Uint8Array | string | undefined>;
  /**
   * Runs before the operation and may refuse it. Throwing or running past `timeoutMs` refuses
   * it with EIO (fail closed). Do not touch the sandbox's mounts from here: the guest request
   * waits for you.
   */
  readonly before?: (op: FileOpInfo) => FileHookVerdict | Promise<FileHookVerdict>;
  /** Runs after the operation (blocked ones too); errors and timeouts are ignored. */
  readonly after?: (event: FileEventInfo) => void | Promise<void>;
  /** Limit for this rule's callbacks, in ms. Default 5000. */
  readonly timeoutMs?: number;
}
