/**
 * Copy-on-write over a lower provider (typically a read-only host directory): reads come
 * from the upper layer when it has the entry, else from the lower one; every change copies
 * the entry up first and lands in the upper layer, so the lower one is never written.
 * Removed lower entries are remembered as in-memory whiteouts (the upper layer is per
 * sandbox, so they live exactly as long as it does).
 *
 * Upper-layer nodes show the owner the guest gave them (overlay-owners.ts). The root shows
 * the lower root's mode, owner and times (the upper root is a private host
 * directory made for this sandbox, whose attributes mean nothing to the guest); a guest
 * chmod/chown of the root is kept in memory, and once the guest changes the root's entries
 * or times, the times are the upper root's.
 *
 * Known difference from overlayfs: a file opened read-only before another handle copies it
 * up keeps reading the lower copy.
 */
import { Errno, VfsError } from "../errors.js";
import { childPath, splitParent } from "../names.js";
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
import {
  exportTree,
  importTree,
  rootEntry,
  type BlobSink,
  type BlobSource,
  type CopyableContents,
  type MountImage,
} from "../tree-image.js";
import { CopyUp } from "./overlay-copy-up.js";
import { UpperOwners } from "./overlay-owners.js";
import { OverlayMasks } from "./overlay-state.js";

type RootAttrs = Pick<VfsSetattr, "mode" | "uid" | "gid">;

export class OverlayProvider implements VfsProvider, CopyableContents {
  readonly readOnly = false;
  private readonly masks = new OverlayMasks();
  private readonly copyUp: CopyUp;
  private readonly owners = new UpperOwners();
  /** The guest's chmod/chown of the root (never applied to the host directory). */
  private rootAttrs: RootAttrs = {};
  /** The guest changed the root's entries or times: the upper root's times are the real ones. */
  private rootChanged = false;

  constructor(
    private readonly lower: VfsProvider,
    private readonly upper: VfsProvider,
    private readonly onClose?: () => Promise<void>,
  ) {
    this.copyUp = new CopyUp(lower, upper, this.masks, this.owners);
  }

  async stat(path: string): Promise<VfsStat> {
    if (path === "/") return this.rootStat();
    const up = await this.copyUp.inUpper(path);
    if (up !== undefined) return withLayer(this.owners.apply(up), "u");
    try {
      if (!this.masks.lowerVisible(path)) throw new VfsError(Errno.ENOENT);
      return withLayer(await this.lower.stat(path), "l");
    } catch (err) {
      // Missing in both layers: ENOTDIR when the merged parent is a file, as POSIX says.
      if (err instanceof VfsError && err.errno === Errno.ENOENT && path !== "/") {
        const parent = await this.stat(splitParent(path).parent);
        if (parent.type !== "dir") throw new VfsError(Errno.ENOTDIR);
      }
      throw err;
    }
  }

  private async rootStat(): Promise<VfsStat> {
    const upper = withLayer(await this.upper.stat("/"), "u");
    const lower = await this.lower.stat("/").catch(() => undefined);
    if (lower === undefined || lower.type !== "dir") return { ...upper, ...this.rootAttrs };
    const times = this.rootChanged ? upper : lower;
    return {
      ...upper,
      mode: lower.mode,
      uid: lower.uid,
      gid: lower.gid,
      ...this.rootAttrs,
      atimeMs: times.atimeMs,
      mtimeMs: times.mtimeMs,
      ctimeMs: times.ctimeMs,
    };
  }

  /** Notes a change of entries in `path`'s parent (for the root's times). */
  private changedIn(path: string): void {
    if (!this.rootChanged && splitParent(path).parent === "/") this.rootChanged = true;
  }

  private async exists(path: string): Promise<VfsStat | undefined> {
    try {
      return await this.stat(path);
    } catch (err) {
      if (err instanceof VfsError && (err.errno === Errno.ENOENT || err.errno === Errno.ENOTDIR)) {
        return undefined;
      }
      throw err;
    }
  }

  async readdir(path: string): Promise<VfsDirEntry[]> {
    const stat = await this.stat(path);
    if (stat.type !== "dir") throw new VfsError(Errno.ENOTDIR);
    const merged = new Map<string, VfsDirEntry>();
    if (this.masks.lowerChildrenVisible(path)) {
      const lower = await this.lower.readdir(path).catch(() => []);
      for (const e of lower)
        if (this.masks.lowerVisible(childPath(path, e.name))) merged.set(e.name, e);
    }
    if ((await this.copyUp.inUpper(path)) !== undefined) {
      for (const e of await this.upper.readdir(path)) merged.set(e.name, e);
    }
    return [...merged.values()];
  }

  async open(path: string, flags: VfsOpenFlags): Promise<VfsHandle> {
    if (flags.write || flags.truncate || flags.append) {
      await this.copyUp.ensure(path);
      return this.owners.handle(await this.upper.open(path, flags));
    }
    if ((await this.copyUp.inUpper(path)) !== undefined) {
      return this.owners.handle(await this.upper.open(path, flags));
    }
    if (!this.masks.lowerVisible(path)) throw new VfsError(Errno.ENOENT);
    return this.lower.open(path, flags);
  }

  /** Prepares a new name: EEXIST if visible, parent copied up. */
  private async newEntry(path: string): Promise<void> {
    if ((await this.exists(path)) !== undefined) throw new VfsError(Errno.EEXIST);
    const { parent } = splitParent(path);
    const parentStat = await this.stat(parent);
    if (parentStat.type !== "dir") throw new VfsError(Errno.ENOTDIR);
    await this.copyUp.ensure(parent);
    this.changedIn(path);
  }

  async create(
    path: string,
    mode: number,
    flags: VfsOpenFlags,
    owner: VfsOwner,
  ): Promise<VfsHandle> {
    await this.newEntry(path);
    const handle = await this.upper.create(path, mode, flags, owner);
    try {
      this.owners.set(await handle.stat(), owner);
    } catch (err) {
      await handle.close();
      throw err;
    }
    this.masks.created(path, false);
    return this.owners.handle(handle);
  }

  async mkdir(path: string, mode: number, owner: VfsOwner): Promise<void> {
    await this.newEntry(path);
    await this.upper.mkdir(path, mode, owner);
    this.owners.set(await this.upper.stat(path), owner);
    this.masks.created(path, true);
  }

  async mknod(path: string, type: "file" | "fifo", mode: number, owner: VfsOwner): Promise<void> {
    await this.newEntry(path);
    await this.upper.mknod(path, type, mode, owner);
    this.owners.set(await this.upper.stat(path), owner);
    this.masks.created(path, false);
  }

  async symlink(target: string, path: string, owner: VfsOwner): Promise<void> {
    await this.newEntry(path);
    await this.upper.symlink(target, path, owner);
    this.owners.set(await this.upper.stat(path), owner);
    this.masks.created(path, false);
  }

  async link(from: string, to: string): Promise<void> {
    await this.copyUp.ensure(from);
    await this.newEntry(to);
    await this.upper.link(from, to);
    this.masks.created(to, false);
  }

  async readlink(path: string): Promise<string> {
    if ((await this.copyUp.inUpper(path)) !== undefined) return this.upper.readlink(path);
    if (!this.masks.lowerVisible(path)) throw new VfsError(Errno.ENOENT);
    return this.lower.readlink(path);
  }

  /** Removes a visible entry: from the upper layer if there, and hides the lower one. */
  private async remove(path: string, wantDir: boolean): Promise<void> {
    const stat = await this.stat(path);
    if (wantDir && stat.type !== "dir") throw new VfsError(Errno.ENOTDIR);
    if (!wantDir && stat.type === "dir") throw new VfsError(Errno.EISDIR);
    if (wantDir && (await this.readdir(path)).length > 0) throw new VfsError(Errno.ENOTEMPTY);
    const hide = await this.lowerShows(path);
    const up = await this.copyUp.inUpper(path);
    if (up !== undefined) {
      // Directory in the upper layer may still hold nothing visible but is empty by now.
      if (wantDir) await this.upper.rmdir(path);
      else await this.upper.unlink(path);
      this.owners.unlinked(up);
    }
    this.changedIn(path);
    if (hide) this.masks.whiteout(path);
  }

  /**
   * Whether removing `path` needs a whiteout: only where a lower entry shows. A whiteout for
   * every name the guest ever removed would let it grow host memory without bound (create,
   * rename away, repeat).
   */
  private async lowerShows(path: string): Promise<boolean> {
    if (!this.masks.lowerVisible(path)) return false;
    return (await this.lower.stat(path).catch(() => undefined)) !== undefined;
  }

  async unlink(path: string): Promise<void> {
    await this.remove(path, false);
  }

  async rmdir(path: string): Promise<void> {
    if (path === "/") throw new VfsError(Errno.EBUSY);
    await this.remove(path, true);
  }

  async rename(from: string, to: string, mode: RenameMode): Promise<void> {
    if (mode === "exchange") throw new VfsError(Errno.EINVAL);
    const src = await this.stat(from);
    const dst = await this.exists(to);
    if (dst !== undefined) {
      if (mode === "noreplace") throw new VfsError(Errno.EEXIST);
      if (dst.type === "dir" && src.type !== "dir") throw new VfsError(Errno.EISDIR);
      if (dst.type !== "dir" && src.type === "dir") throw new VfsError(Errno.ENOTDIR);
      if (dst.type === "dir" && (await this.readdir(to)).length > 0)
        throw new VfsError(Errno.ENOTEMPTY);
    }
    await this.copyUp.ensureTree(from);
    await this.copyUp.ensure(splitParent(to).parent);
    const hideFrom = await this.lowerShows(from);
    const hideTo = src.type === "dir" && (await this.lowerShows(to));
    const replaced = await this.copyUp.inUpper(to);
    await this.upper.rename(from, to, "replace");
    this.owners.unlinked(replaced);
    this.changedIn(from);
    this.changedIn(to);
    if (hideFrom) this.masks.whiteout(from);
    // The moved entry is complete in the upper layer; nothing of the lower `to` may show.
    if (hideTo) this.masks.makeOpaque(to);
    else this.masks.created(to, src.type === "dir");
  }

  async setattr(path: string, attrs: VfsSetattr): Promise<VfsStat> {
    if (path === "/") return this.setRootAttrs(attrs);
    await this.copyUp.ensure(path);
    const { uid, gid, ...rest } = attrs;
    if (uid === undefined && gid === undefined) {
      return this.owners.apply(await this.upper.setattr(path, attrs));
    }
    // A chown is the guest's business (it checked the caller): kept here, not on the host.
    const before = await this.upper.stat(path);
    const shown = this.owners.apply(before);
    this.owners.set(before, { uid: uid ?? shown.uid, gid: gid ?? shown.gid });
    const after = Object.keys(rest).length > 0 ? await this.upper.setattr(path, rest) : before;
    return this.owners.apply(after);
  }

  private async setRootAttrs(attrs: VfsSetattr): Promise<VfsStat> {
    const { mode, uid, gid, sizeBytes, atimeMs, mtimeMs } = attrs;
    if (sizeBytes !== undefined) throw new VfsError(Errno.EISDIR);
    if (atimeMs !== undefined || mtimeMs !== undefined) {
      // A time not given stays what the guest saw, not the upper root's.
      const shown = await this.rootStat();
      await this.upper.setattr("/", {
        atimeMs: atimeMs ?? shown.atimeMs,
        mtimeMs: mtimeMs ?? shown.mtimeMs,
      });
      this.rootChanged = true;
    }
    this.rootAttrs = {
      ...this.rootAttrs,
      ...(mode !== undefined ? { mode: mode & 0o7777 } : {}),
      ...(uid !== undefined ? { uid } : {}),
      ...(gid !== undefined ? { gid } : {}),
    };
    return this.rootStat();
  }

  /** Space is what the upper layer has: that is where writes go. */
  statfs(): Promise<VfsStatfs> {
    return this.upper.statfs("/");
  }

  /**
   * What this process holds of the overlay (the upper layer, whiteouts, the guest's owners and
   * root attributes), for a copy of its sandbox; call while nothing writes it.
   */
  async exportContents(sink: BlobSink): Promise<MountImage> {
    const entries = (await exportTree(this.upper, sink)).map((e) => {
      const owner = e.fileId === undefined ? undefined : this.owners.ownerOf(e.fileId);
      return owner === undefined ? e : { ...e, uid: owner.uid, gid: owner.gid };
    });
    return {
      kind: "overlay",
      entries,
      upperRoot: await rootEntry(this.upper),
      ...this.masks.exportState(),
      rootAttrs: { ...this.rootAttrs },
      rootChanged: this.rootChanged,
    };
  }

  /** Into a fresh overlay (its upper layer empty); returns the file ids as the guest saw them. */
  async importContents(image: MountImage, source: BlobSource): Promise<Map<string, string>> {
    if (image.kind !== "overlay") throw new Error(`a ${image.kind} image is not an overlay's`);
    const renamed = await importTree(this.upper, image.entries, source, (entry, fileId) => {
      if (fileId !== undefined) this.owners.setById(fileId, entry);
    });
    const { atimeMs, mtimeMs } = image.upperRoot;
    await this.upper.setattr("/", { atimeMs, mtimeMs });
    this.masks.importState(image);
    const { mode, uid, gid } = image.rootAttrs;
    this.rootAttrs = {
      ...(mode === undefined ? {} : { mode }),
      ...(uid === undefined ? {} : { uid }),
      ...(gid === undefined ? {} : { gid }),
    };
    this.rootChanged = image.rootChanged === true;
    // The guest knows upper files by the layer's ids (withLayer).
    return new Map([...renamed].map(([from, to]) => [`u${from}`, `u${to}`]));
  }

  async close(): Promise<void> {
    await this.lower.close?.();
    await this.upper.close?.();
    await this.onClose?.();
  }
}

/** The two layers are separate providers: keep their file ids apart. */
function withLayer(stat: VfsStat, layer: "u" | "l"): VfsStat {
  return stat.fileId === undefined ? stat : { ...stat, fileId: `${layer}${stat.fileId}` };
}
