import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cacheDir, makePrivateDir } from "../paths.js";
import { withFileLock } from "../util/index.js";
import { pidAlive } from "../util/index.js";
import { BlobStore, digestHex } from "./blob-store.js";
import type { ImageRuntimeConfig } from "./image-config.js";
import type { Descriptor } from "./manifest.js";
import type { LayerSource } from "./rootfs-build.js";

/** One local image: what `image ls` shows and what a sandbox boots. */
export interface ImageRecord {
  /** Canonical reference (`docker.io/library/alpine:3.20`), the record's key. */
  reference: string;
  registry: string;
  repository: string;
  tag?: string;
  /** Digest of the platform manifest (what `name@digest` pins). */
  digest: string;
  configDigest: string;
  platform: string;
  layers: Descriptor[];
  /** Compressed layer bytes, as registries report image size. */
  sizeBytes: number;
  /** File name of the flattened ext4 under `rootfs/`. */
  rootfsFile: string;
  rootfsSizeBytes: number;
  /** The image's own creation time (config `created`), if it has one. */
  created?: string;
  storedAt: string;
  source: "registry" | "import" | "build";
  config: ImageRuntimeConfig;
}

/** Bump when extraction changes what ends up in the ext4, so old flattenings are not reused. */
const ROOTFS_FORMAT = "v1";

/**
 * The local image store under `<cacheDir>/images/oci`:
 *   blobs/sha256/<hex>        manifests, configs, compressed layers (shared, content-addressed)
 *   rootfs/v1-<config hex>.ext4  the flattened read-only root disk, one per image config digest
 *   refs/<hash of ref>.json   one record per reference, written last (atomic rename)
 *   tmp/                      scratch for flattening; `prune` removes what dead processes left
 * Flattened ext4 per image (not per-layer disks assembled in the guest) because a sandbox then
 * boots one disk with no layer mounts, and the second start does no work at all; the price is
 * disk space for images that share layers. A record is written only after its ext4 is complete,
 * so an interrupted pull or a full disk never leaves an image that looks usable.
 */
export class ImageStore {
  readonly blobs: BlobStore;
  constructor(readonly root: string = join(cacheDir(), "images", "oci")) {
    this.blobs = new BlobStore(join(root, "blobs"));
  }

  private refPath(reference: string): string {
    const key = createHash("sha256").update(reference).digest("hex").slice(0, 40);
    return join(this.root, "refs", `${key}.json`);
  }

  rootfsPathFor(configDigest: string): string {
    return join(this.root, "rootfs", `${ROOTFS_FORMAT}-${digestHex(configDigest)}.ext4`);
  }

  /** The record, only if its ext4 is present and whole. */
  async get(reference: string): Promise<ImageRecord | undefined> {
    let rec: ImageRecord;
    try {
      rec = JSON.parse(await readFile(this.refPath(reference), "utf8")) as ImageRecord;
    } catch {
      return undefined;
    }
    if (rec.reference !== reference) return undefined;
    return (await this.rootfsOk(rec)) ? rec : undefined;
  }

  ext4Path(rec: ImageRecord): string {
    return join(this.root, "rootfs", rec.rootfsFile);
  }

  private async rootfsOk(rec: ImageRecord): Promise<boolean> {
    try {
      return (await stat(this.ext4Path(rec))).size === rec.rootfsSizeBytes;
    } catch {
      return false;
    }
  }

  async put(rec: ImageRecord): Promise<void> {
    const path = this.refPath(rec.reference);
    makePrivateDir(join(this.root, "refs"));
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    await writeFile(tmp, JSON.stringify(rec, null, 2));
    await rename(tmp, path);
  }

  async list(): Promise<ImageRecord[]> {
    const dir = join(this.root, "refs");
    const names = await readdir(dir).catch(() => [] as string[]);
    const out: ImageRecord[] = [];
    for (const n of names.filter((x) => x.endsWith(".json"))) {
      try {
        const rec = JSON.parse(await readFile(join(dir, n), "utf8")) as ImageRecord;
        if (await this.rootfsOk(rec)) out.push(rec);
      } catch {
        // A record being replaced right now, or damaged: not listed.
      }
    }
    return out.sort((a, b) => b.storedAt.localeCompare(a.storedAt));
  }

  /**
   * Removes the record, and its ext4 and blobs where no other record uses them (as `docker rmi`
   * deletes an image's layers). False when absent.
   */
  async remove(reference: string): Promise<boolean> {
    const path = this.refPath(reference);
    let rec: ImageRecord;
    try {
      rec = JSON.parse(await readFile(path, "utf8")) as ImageRecord;
    } catch {
      return false;
    }
    await rm(path, { force: true });
    const others = await this.list();
    if (!others.some((o) => o.rootfsFile === rec.rootfsFile))
      await rm(join(this.root, "rootfs", rec.rootfsFile), { force: true });
    await this.removeBlobsUnlessUsed([
      rec.digest,
      rec.configDigest,
      ...rec.layers.map((l) => l.digest),
    ]);
    return true;
  }

  /** Deletes these blobs where no record needs them (an image's own, an import's scraps). */
  async removeBlobsUnlessUsed(digests: readonly string[]): Promise<void> {
    const used = referencedBlobs(await this.list());
    for (const d of digests) {
      if (!used.has(digestHex(d))) await rm(this.blobs.path(d), { force: true });
    }
  }

  /**
   * The flattened ext4 for an image config, building it from `layers` if missing. A file lock per
   * config digest keeps two processes from flattening the same image at once.
   */
  async ensureRootfs(
    configDigest: string,
    layers: () => Promise<LayerSource[]>,
  ): Promise<{ path: string; sizeBytes: number; built: boolean }> {
    const out = this.rootfsPathFor(configDigest);
    const existing = await stat(out).catch(() => undefined);
    if (existing) return { path: out, sizeBytes: existing.size, built: false };
    const lockDir = join(this.root, "tmp");
    makePrivateDir(join(this.root, "rootfs"));
    makePrivateDir(lockDir);
    return withFileLock(
      join(lockDir, `${digestHex(configDigest)}.lock`),
      { timeoutMs: 30 * 60_000 },
      async () => {
        const done = await stat(out).catch(() => undefined);
        if (done) return { path: out, sizeBytes: done.size, built: false };
        await this.removeDeadScratch();
        // Loaded here: listing and reading the store must not load the layer code (tar).
        const { buildRootfsExt4 } = await import("./rootfs-build.js");
        await buildRootfsExt4({ layers: await layers(), workDir: lockDir, outPath: out });
        return { path: out, sizeBytes: (await stat(out)).size, built: true };
      },
    );
  }

  /**
   * Deletes blobs and ext4 images no record refers to, and scratch left by dead processes.
   * Unreferenced files younger than `graceMs` (default 10 min) stay: they may belong to a pull
   * in another process that has not written its record yet. Returns how many files and bytes went.
   */
  async prune(opts: { graceMs?: number } = {}): Promise<{ files: number; bytes: number }> {
    const cutoffMs = Date.now() - (opts.graceMs ?? 10 * 60_000);
    const recs = await this.list();
    const keepBlobs = referencedBlobs(recs);
    const keepRootfs = new Set(recs.map((r) => r.rootfsFile));
    let files = 0;
    let bytes = 0;
    const dropIfOld = async (path: string, always: boolean): Promise<void> => {
      const st = await stat(path).catch(() => undefined);
      if (!st || (!always && st.mtimeMs > cutoffMs)) return;
      await rm(path, { recursive: true, force: true });
      files++;
      bytes += st.isFile() ? st.size : 0;
    };
    const blobDir = join(this.blobs.root, "sha256");
    for (const name of await readdir(blobDir).catch(() => [] as string[])) {
      const tmp = /\.tmp-(\d+)-/.exec(name);
      if (tmp) {
        if (!pidAlive(Number(tmp[1]))) await dropIfOld(join(blobDir, name), true);
      } else if (!keepBlobs.has(name)) await dropIfOld(join(blobDir, name), false);
    }
    const rootfsDir = join(this.root, "rootfs");
    for (const name of await readdir(rootfsDir).catch(() => [] as string[])) {
      if (!keepRootfs.has(name)) await dropIfOld(join(rootfsDir, name), false);
    }
    files += await this.removeDeadScratch();
    return { files, bytes };
  }

  /** Flattening scratch of processes that died mid-build (killed, power loss). */
  private async removeDeadScratch(): Promise<number> {
    const tmpDir = join(this.root, "tmp");
    let n = 0;
    for (const name of await readdir(tmpDir).catch(() => [] as string[])) {
      const m = /^build-(\d+)-/.exec(name);
      if (!m || pidAlive(Number(m[1]))) continue;
      await rm(join(tmpDir, name), { recursive: true, force: true });
      n++;
    }
    return n;
  }
}

/** Hex digests of every blob the records need. */
function referencedBlobs(recs: ImageRecord[]): Set<string> {
  const keep = new Set<string>();
  for (const r of recs) {
    keep.add(digestHex(r.digest));
    keep.add(digestHex(r.configDigest));
    for (const l of r.layers) keep.add(digestHex(l.digest));
  }
  return keep;
}
