/** Open file and directory handles (fh values the guest kernel echoes back). */
import { Errno, VfsError } from "./errors.js";
import type { VfsDirEntry, VfsHandle } from "./provider.js";

export type OpenHandle =
  | { readonly kind: "file"; readonly nodeid: bigint; readonly file: VfsHandle }
  | { readonly kind: "dir"; readonly nodeid: bigint; readonly entries: readonly VfsDirEntry[] };

export class HandleTable {
  private readonly handles = new Map<bigint, OpenHandle>();
  private nextFh = 1n;

  constructor(private readonly maxHandles: number) {}

  get size(): number {
    return this.handles.size;
  }

  /** EMFILE beyond the bound: a guest that never releases must not grow host memory forever. */
  add(handle: OpenHandle): bigint {
    if (this.handles.size >= this.maxHandles) throw new VfsError(Errno.EMFILE);
    const fh = this.nextFh++;
    this.handles.set(fh, handle);
    return fh;
  }

  file(fh: bigint): Extract<OpenHandle, { kind: "file" }> {
    const handle = this.handles.get(fh);
    if (handle?.kind !== "file") throw new VfsError(Errno.EBADF);
    return handle;
  }

  dir(fh: bigint): Extract<OpenHandle, { kind: "dir" }> {
    const handle = this.handles.get(fh);
    if (handle?.kind !== "dir") throw new VfsError(Errno.EBADF);
    return handle;
  }

  /** Some open file of `nodeid`: an unlinked file is only reachable through its handles. */
  fileOf(nodeid: bigint): Extract<OpenHandle, { kind: "file" }> | undefined {
    for (const handle of this.handles.values()) {
      if (handle.kind === "file" && handle.nodeid === nodeid) return handle;
    }
    return undefined;
  }

  take(fh: bigint): OpenHandle | undefined {
    const handle = this.handles.get(fh);
    this.handles.delete(fh);
    return handle;
  }

  drain(): OpenHandle[] {
    const all = [...this.handles.values()];
    this.handles.clear();
    return all;
  }
}
