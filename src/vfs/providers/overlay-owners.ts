/**
 * Owners of the overlay's upper-layer nodes as the guest knows them. The upper layer is a
 * host directory written by the host user, who cannot chown, so on the host every upper node
 * belongs to that user. In the guest, a node belongs to whoever created it, a copied-up node
 * keeps its lower owner, and a chown sticks: otherwise a non-root guest user could create a
 * file in an overlay mount and then not write it again.
 *
 * Keyed by the upper provider's file id; an entry goes when its node's last name does, so the
 * map holds at most one entry per upper node (bounded by the layer's inode quota).
 */
import type { VfsHandle, VfsOwner, VfsStat } from "../provider.js";

export class UpperOwners {
  private readonly byFile = new Map<string, VfsOwner>();

  set(stat: VfsStat, owner: VfsOwner): void {
    if (stat.fileId !== undefined) this.byFile.set(stat.fileId, { uid: owner.uid, gid: owner.gid });
  }

  ownerOf(fileId: string): VfsOwner | undefined {
    return this.byFile.get(fileId);
  }

  /** The guest's owner of upper file `fileId` (a copy of the layer sets it again). */
  setById(fileId: string, owner: VfsOwner): void {
    this.byFile.set(fileId, { uid: owner.uid, gid: owner.gid });
  }

  /** `stat` with the guest's owner, where one is known. */
  apply(stat: VfsStat): VfsStat {
    const owner = stat.fileId === undefined ? undefined : this.byFile.get(stat.fileId);
    return owner === undefined ? stat : { ...stat, uid: owner.uid, gid: owner.gid };
  }

  /** A name of the node `stat` describes is gone; the entry goes with its last name. */
  unlinked(stat: VfsStat | undefined): void {
    if (stat?.fileId === undefined) return;
    if (stat.type === "dir" || stat.nlink <= 1) this.byFile.delete(stat.fileId);
  }

  /** A handle whose `stat` answers with the guest's owner. */
  handle(inner: VfsHandle): VfsHandle {
    return {
      ...(inner.spaceLimited === true ? { spaceLimited: true } : {}),
      read: (offset, lengthBytes) => inner.read(offset, lengthBytes),
      write: (offset, data) => inner.write(offset, data),
      stat: async () => this.apply(await inner.stat()),
      truncate: (sizeBytes) => inner.truncate(sizeBytes),
      sync: () => inner.sync(),
      close: () => inner.close(),
    };
  }
}
