/**
 * Copy-up for the overlay: brings an entry (and the directories above it) from the lower
 * layer into the upper one before it changes. One copy per path at a time: concurrent
 * writers of the same file wait for the same copy.
 */
import { Errno, VfsError } from "../errors.js";
import { childPath, splitParent } from "../names.js";
import type { VfsProvider, VfsStat } from "../provider.js";
import type { UpperOwners } from "./overlay-owners.js";
import type { OverlayMasks } from "./overlay-state.js";

const COPY_CHUNK_BYTES = 1 << 20;
const OWNER = { uid: 0, gid: 0 };

export class CopyUp {
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    private readonly lower: VfsProvider,
    private readonly upper: VfsProvider,
    private readonly masks: OverlayMasks,
    private readonly owners: UpperOwners,
  ) {}

  async inUpper(path: string): Promise<VfsStat | undefined> {
    try {
      return await this.upper.stat(path);
    } catch (err) {
      if (err instanceof VfsError && (err.errno === Errno.ENOENT || err.errno === Errno.ENOTDIR)) {
        return undefined;
      }
      throw err;
    }
  }

  /** Makes `path` exist in the upper layer (copying it from lower); ENOENT if neither has it. */
  async ensure(path: string): Promise<void> {
    if (path === "/" || (await this.inUpper(path)) !== undefined) return;
    const running = this.inFlight.get(path);
    if (running !== undefined) return running;
    const copy = this.copy(path).finally(() => this.inFlight.delete(path));
    this.inFlight.set(path, copy);
    return copy;
  }

  /** Copies a whole visible subtree (used before renaming a directory). */
  async ensureTree(path: string): Promise<void> {
    await this.ensure(path);
    const stat = await this.upper.stat(path);
    if (stat.type !== "dir" || !this.masks.lowerChildrenVisible(path)) return;
    let entries;
    try {
      entries = await this.lower.readdir(path);
    } catch {
      return; // nothing below in the lower layer
    }
    for (const entry of entries) {
      const child = childPath(path, entry.name);
      if (this.masks.lowerVisible(child)) await this.ensureTree(child);
    }
  }

  private async copy(path: string): Promise<void> {
    if (!this.masks.lowerVisible(path)) throw new VfsError(Errno.ENOENT);
    const { parent } = splitParent(path);
    await this.ensure(parent);
    const stat = await this.lower.stat(path);
    switch (stat.type) {
      case "dir":
        await this.upper.mkdir(path, stat.mode, OWNER);
        break;
      case "symlink":
        await this.upper.symlink(await this.lower.readlink(path), path, OWNER);
        break;
      case "file":
        await this.copyFile(path, stat);
        break;
      default:
        throw new VfsError(Errno.EACCES);
    }
    // The copy is the same node to the guest: same owner, same times.
    this.owners.set(await this.upper.stat(path), stat);
    await this.upper
      .setattr(path, { atimeMs: stat.atimeMs, mtimeMs: stat.mtimeMs })
      .catch(() => undefined);
  }

  private async copyFile(path: string, stat: VfsStat): Promise<void> {
    const src = await this.lower.open(path, {
      read: true,
      write: false,
      append: false,
      truncate: false,
    });
    try {
      const dst = await this.upper.create(
        path,
        stat.mode,
        { read: false, write: true, append: false, truncate: false },
        OWNER,
      );
      try {
        for (let offset = 0; ;) {
          const chunk = await src.read(offset, COPY_CHUNK_BYTES);
          if (chunk.length === 0) break;
          await dst.write(offset, chunk);
          offset += chunk.length;
        }
      } catch (err) {
        await dst.close();
        await this.upper.unlink(path).catch(() => undefined);
        throw err;
      }
      await dst.close();
    } finally {
      await src.close();
    }
  }
}
