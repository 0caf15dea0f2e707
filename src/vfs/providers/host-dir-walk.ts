/**
 * Beneath-root resolution for HostDirProvider, the Node equivalent of
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS). Node has no *at() calls, but
 * "/proc/self/fd/<dirfd>/<name>" is resolved by the kernel exactly like openat(dirfd, name):
 * the magic link pins the directory inode we opened, so a later rename or symlink swap of any
 * path above it cannot redirect the operation. Every step opens one plain component with
 * O_PATH | O_NOFOLLOW | O_DIRECTORY, so a symlink anywhere in the path fails (ENOTDIR/ELOOP)
 * instead of being followed, and the final component is always handed to a call that does
 * not follow it (lstat, O_NOFOLLOW open, unlink, rename, ...).
 */
import { promises as fsp, constants as fsc } from "node:fs";
import { asVfsError } from "../errors.js";
import { splitPath } from "../names.js";

/** Linux O_PATH (not exported by Node's fs.constants). */
export const O_PATH = 0o10000000;

export function procPath(fd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

/** A directory descriptor we own; `close()` is idempotent. */
export interface DirRef {
  readonly fd: number;
  close(): Promise<void>;
}

export async function openRoot(rootPath: string): Promise<fsp.FileHandle> {
  return fsp.open(rootPath, O_PATH | fsc.O_DIRECTORY);
}

/** Opens the directory `parts` below `rootFd`, refusing symlinks at every step. */
export async function walkDir(
  rootFd: number,
  parts: readonly string[],
): Promise<fsp.FileHandle | undefined> {
  let current: fsp.FileHandle | undefined;
  try {
    for (const name of parts) {
      const base = current?.fd ?? rootFd;
      const next = await fsp.open(procPath(base, name), O_PATH | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
      await current?.close();
      current = next;
    }
    return current;
  } catch (err) {
    await current?.close().catch(() => undefined);
    throw asVfsError(err);
  }
}

/**
 * Runs `fn` with a /proc path naming `name` inside the pinned parent directory of `path`
 * (or, for the root itself, the root directory with `name` undefined).
 */
export async function inParent<T>(
  rootFd: number,
  path: string,
  fn: (entryPath: string, parentFd: number, name: string | undefined) => Promise<T>,
): Promise<T> {
  const parts = splitPath(path);
  const name = parts.pop();
  const parent = await walkDir(rootFd, parts);
  const parentFd = parent?.fd ?? rootFd;
  try {
    return await fn(
      name === undefined ? procPath(parentFd) : procPath(parentFd, name),
      parentFd,
      name,
    );
  } catch (err) {
    throw asVfsError(err);
  } finally {
    await parent?.close().catch(() => undefined);
  }
}

/** Runs `fn` with an O_PATH descriptor of `path` itself (never a symlink's target). */
export async function withNode<T>(
  rootFd: number,
  path: string,
  fn: (fd: number) => Promise<T>,
): Promise<T> {
  return inParent(rootFd, path, async (entryPath, _parentFd, name) => {
    if (name === undefined) return fn(rootFd);
    const node = await fsp.open(entryPath, O_PATH | fsc.O_NOFOLLOW);
    try {
      return await fn(node.fd);
    } finally {
      await node.close().catch(() => undefined);
    }
  });
}
