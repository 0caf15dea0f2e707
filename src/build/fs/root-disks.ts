/**
 * The root disk (a flattened ext4) of each filesystem state a build reaches: a base image's
 * is the store's own; a state with build layers on top is flattened once per build into the
 * build's scratch directory, through the same checks as any pulled layer (src/image
 * rootfs-build: rooted paths, no writes through symlinks, whiteouts, ownership), so every
 * layer the builder writes is checked before a later step, the cache or an image uses it.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { join } from "node:path";
import { flattenLayers, type LayerSource } from "../../image/index.js";
import { Ext4Reader } from "../ext4/reader.js";

export interface FsLayer {
  digest: string;
  diffId: string;
  sizeBytes: number;
  mediaType: string;
  /** The blob on the host (image store or build cache). */
  blobPath: string;
}

/** A filesystem state: base layers plus build layers, and its root disk when one exists. */
export interface FsState {
  layers: readonly FsLayer[];
  /** The image store's flattened disk of exactly these layers (a base image). */
  ext4?: string;
}

export function fsKey(state: FsState): string {
  return createHash("sha256")
    .update(state.layers.map((l) => l.diffId).join("\n"))
    .digest("hex");
}

/** The state's layers as the image module's flatten reads them (blobs opened in order). */
export function layerSources(state: FsState): LayerSource[] {
  return state.layers.map((l) => ({
    name: l.digest,
    diffId: l.diffId,
    sizeBytes: l.sizeBytes,
    open: () => Promise.resolve(createReadStream(l.blobPath, { highWaterMark: 1 << 20 })),
  }));
}

export class RootDisks {
  private readonly disks = new Map<string, Promise<string>>();
  private readonly readers = new Map<string, Promise<Ext4Reader>>();

  constructor(private readonly scratchDir: string) {}

  ext4(state: FsState): Promise<string> {
    if (state.ext4 !== undefined) return Promise.resolve(state.ext4);
    const key = fsKey(state);
    let disk = this.disks.get(key);
    if (!disk) {
      const outPath = join(this.scratchDir, `root-${key.slice(0, 32)}.ext4`);
      const layers = layerSources(state);
      disk = flattenLayers({ layers, workDir: this.scratchDir, outPath }).then(() => outPath);
      // A failed flatten is not cached: the error goes to whoever asked.
      disk.catch(() => this.disks.delete(key));
      this.disks.set(key, disk);
    }
    return disk;
  }

  /** A reader of the state's root disk (kept open until `close`). */
  reader(state: FsState): Promise<Ext4Reader> {
    const key = state.ext4 ?? fsKey(state);
    let r = this.readers.get(key);
    if (!r) {
      r = this.ext4(state).then((path) => Ext4Reader.open(path, "a stage's root disk"));
      r.catch(() => this.readers.delete(key));
      this.readers.set(key, r);
    }
    return r;
  }

  /** The flattened disk of `state` if this build made one (to move into the image store). */
  made(state: FsState): Promise<string> | undefined {
    return state.ext4 === undefined ? this.disks.get(fsKey(state)) : undefined;
  }

  async close(): Promise<void> {
    for (const r of this.readers.values()) await (await r.catch(() => undefined))?.close();
    this.readers.clear();
  }
}
