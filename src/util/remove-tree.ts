/**
 * Removes a directory tree of any shape: deeper than PATH_MAX, directories without
 * permissions, symlink loops, names that are not UTF-8, ~100k entries. A guest builds such
 * trees in overlay upper layers (host directories in the run dir), and `rm -r`-style removal
 * by path (`fs.rmSync(..., { recursive: true })`) fails on them with ENAMETOOLONG.
 *
 * How: no path handed to the kernel is ever longer than `/proc/self/fd/N/<name>`:
 * "/proc/self/fd/N/name" resolves like unlinkat(N, name), relative to a directory we hold
 * open (Node has no *at() calls). Instead of descending, every directory is renamed
 * into one holding directory at the top of the tree (`<root>/.wheellock-rm-<random>/<n>`), so
 * the tree flattens as it goes: at most five descriptors are open, memory is one number per
 * directory waiting to be emptied, and each entry is read once. Removing a 3,000-level chain
 * takes as long as a flat tree of 3,000 directories.
 *
 * Nothing is followed: symlinks are unlinked as names, directories are opened with
 * O_NOFOLLOW, and a directory is only chmodded (u+rwx, needed to list, enter, empty and move
 * it) through a descriptor of that very directory.
 */
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  constants as fsc,
  fstatSync,
  mkdirSync,
  openSync,
  opendirSync,
  renameSync,
  rmdirSync,
  unlinkSync,
  type Dir,
} from "node:fs";
import { resolve } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { ErrCleanup } from "../errors.js";

/** Linux O_PATH (not exported by Node's fs.constants). */
const O_PATH = 0o10000000;
const DIR_FLAGS = O_PATH | fsc.O_DIRECTORY | fsc.O_NOFOLLOW;
const OWNER_RWX = 0o700;
/** Entries handled between two yields to the event loop (async removal). */
const ENTRIES_PER_TURN = 512;

/** Removes `path` and everything below it; a missing path is fine (like `rm -rf`). */
export async function removeTree(path: string): Promise<void> {
  const remover = new TreeRemover(path);
  while (!remover.step(ENTRIES_PER_TURN)) await nextTurn();
}

/** The same, without yielding: for exit hooks and other synchronous cleanup. */
export function removeTreeSync(path: string): void {
  const remover = new TreeRemover(path);
  while (!remover.step(Number.POSITIVE_INFINITY));
}

function code(err: unknown): string | undefined {
  const c = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof c === "string" ? c : undefined;
}

function fdPath(fd: number, name?: Buffer): Buffer {
  const dir = Buffer.from(`/proc/self/fd/${fd}`);
  return name === undefined ? dir : Buffer.concat([dir, Buffer.from("/"), name]);
}

/** One directory being read: its descriptor, its listing, and what the listing achieved. */
interface Listing {
  readonly fd: number;
  readonly dir: Dir;
  /** Name in the holding directory; undefined for the root. */
  readonly heldId: number | undefined;
  progress: number;
}

class TreeRemover {
  private readonly root: string;
  private rootFd: number | undefined;
  private hold: { fd: number; name: Buffer } | undefined;
  private readonly pending: number[] = [];
  private nextId = 0;
  private current: Listing | undefined;
  private started = false;
  /** Entries the last listing of the root removed or moved. */
  private rootProgress = 0;
  private what = "open";

  constructor(path: string) {
    this.root = resolve(path);
    if (this.root === "/") throw new ErrCleanup(this.root, "refusing to remove /");
  }

  /** Handles up to `budget` entries; true when the tree is gone. */
  step(budget: number): boolean {
    try {
      if (!this.started) {
        this.started = true;
        if (!this.openRoot()) return true;
      }
      for (let n = 0; n < budget; n++) if (this.advance()) return true;
      return false;
    } catch (err) {
      this.closeAll();
      if (err instanceof ErrCleanup) throw err;
      throw new ErrCleanup(
        this.root,
        `cannot remove ${this.root}: ${code(err) ?? (err as Error).message} (${this.what})`,
        code(err),
      );
    }
  }

  /** False when there is nothing to remove beyond what was done here (absent, or not a dir). */
  private openRoot(): boolean {
    try {
      this.rootFd = openSync(this.root, DIR_FLAGS);
    } catch (err) {
      const c = code(err);
      if (c === "ENOENT") return false;
      if (c !== "ENOTDIR" && c !== "ELOOP") throw err;
      this.what = "unlink";
      ignoreMissing(() => unlinkSync(this.root)); // a file or a symlink: the name goes
      return false;
    }
    this.current = this.list(this.rootFd, undefined);
    return true;
  }

  /** One unit of work: one entry, or one directory finished. True when everything is gone. */
  private advance(): boolean {
    const listing = this.current;
    if (listing === undefined) return this.nextListing();
    this.what = "readdir";
    const entry = listing.dir.readSync();
    if (entry === null) {
      this.finish(listing);
      return false;
    }
    const name = Buffer.from(entry.name, "latin1");
    if (listing.heldId === undefined && this.hold !== undefined && name.equals(this.hold.name)) {
      return false;
    }
    this.removeEntry(listing.fd, name, entry.isDirectory());
    listing.progress++;
    return false;
  }

  /** Starts on the next held directory; at the end, removes the holding dir and the root. */
  private nextListing(): boolean {
    const id = this.pending.pop();
    if (id !== undefined) {
      const fd = this.openDir(fdPath(this.holdFd(), Buffer.from(String(id))));
      if (fd !== undefined) this.current = this.list(fd, id);
      return false;
    }
    if (this.hold !== undefined) {
      this.what = "rmdir";
      rmdirSync(fdPath(this.rootFdOrThrow(), this.hold.name));
      closeSync(this.hold.fd);
      this.hold = undefined;
    }
    this.what = "rmdir";
    try {
      rmdirSync(this.root);
    } catch (err) {
      // Something the first listing did not return (or that appeared since): list again.
      if (code(err) !== "ENOTEMPTY" || this.rootProgress === 0) throw err;
      this.current = this.list(this.rootFdOrThrow(), undefined);
      return false;
    }
    this.closeAll();
    return true;
  }

  private finish(listing: Listing): void {
    this.current = undefined;
    listing.dir.closeSync();
    if (listing.heldId === undefined) {
      this.rootProgress = listing.progress; // the root's descriptor stays open until the end
      return;
    }
    closeSync(listing.fd);
    this.what = "rmdir";
    try {
      rmdirSync(fdPath(this.holdFd(), Buffer.from(String(listing.heldId))));
    } catch (err) {
      // An entry the listing skipped: list again while that still removes something.
      if (code(err) !== "ENOTEMPTY" || listing.progress === 0) throw err;
      this.pending.push(listing.heldId);
    }
  }

  private removeEntry(dirFd: number, name: Buffer, looksLikeDir: boolean): void {
    const path = fdPath(dirFd, name);
    if (!looksLikeDir) {
      this.what = "unlink";
      try {
        unlinkSync(path);
        return;
      } catch (err) {
        const c = code(err);
        if (c === "ENOENT") return;
        if (c !== "EISDIR" && c !== "EPERM") throw err;
      }
    }
    // Never rmdir a directory that may hold something: the kernel prunes its cached subtree
    // first (shrink_dcache_parent), which makes trying each level of a deep chain quadratic.
    this.moveToHold(path);
  }

  /** Renames a directory into the holding dir, to be emptied from there. */
  private moveToHold(path: Buffer): void {
    const fd = this.openDir(path);
    if (fd === undefined) return;
    closeSync(fd);
    const id = this.nextId++;
    this.what = "rename";
    renameSync(path, fdPath(this.holdFd(), Buffer.from(String(id))));
    this.pending.push(id);
  }

  /**
   * Opens a directory without following a symlink and makes it u+rwx (through the descriptor,
   * so only that directory is ever changed). A non-directory found there is unlinked instead.
   */
  private openDir(path: Buffer): number | undefined {
    this.what = "open";
    let fd: number;
    try {
      fd = openSync(path, DIR_FLAGS);
    } catch (err) {
      const c = code(err);
      if (c === "ENOENT") return undefined;
      if (c !== "ENOTDIR" && c !== "ELOOP") throw err;
      this.what = "unlink";
      ignoreMissing(() => unlinkSync(path));
      return undefined;
    }
    try {
      this.makeUsable(fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return fd;
  }

  private makeUsable(fd: number): void {
    const mode = fstatSync(fd).mode & 0o7777;
    if ((mode & OWNER_RWX) === OWNER_RWX) return;
    this.what = "chmod";
    chmodSync(fdPath(fd), mode | OWNER_RWX);
  }

  private list(fd: number, heldId: number | undefined): Listing {
    if (heldId === undefined) this.makeUsable(fd);
    this.what = "opendir";
    // latin1 maps every byte to one character and back: any name survives the round trip.
    return {
      fd,
      dir: opendirSync(fdPath(fd).toString(), { encoding: "latin1" }),
      heldId,
      progress: 0,
    };
  }

  private rootFdOrThrow(): number {
    if (this.rootFd === undefined) throw new ErrCleanup(this.root, "root not open");
    return this.rootFd;
  }

  private holdFd(): number {
    if (this.hold !== undefined) return this.hold.fd;
    const rootFd = this.rootFdOrThrow();
    this.what = "mkdir";
    for (;;) {
      // Random, so no name the tree already holds (or a guest chose) is taken for it.
      const name = Buffer.from(`.wheellock-rm-${randomBytes(8).toString("hex")}`);
      try {
        mkdirSync(fdPath(rootFd, name), OWNER_RWX);
      } catch (err) {
        if (code(err) === "EEXIST") continue;
        throw err;
      }
      this.hold = { fd: openSync(fdPath(rootFd, name), DIR_FLAGS), name };
      return this.hold.fd;
    }
  }

  private closeAll(): void {
    if (this.current !== undefined) {
      try {
        this.current.dir.closeSync();
      } catch {
        // already closed
      }
      if (this.current.fd !== this.rootFd) closeSyncQuiet(this.current.fd);
      this.current = undefined;
    }
    closeSyncQuiet(this.hold?.fd);
    this.hold = undefined;
    closeSyncQuiet(this.rootFd);
    this.rootFd = undefined;
  }
}

function ignoreMissing(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (code(err) !== "ENOENT") throw err;
  }
}

function closeSyncQuiet(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    closeSync(fd);
  } catch {
    // not open
  }
}
