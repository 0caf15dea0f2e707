/**
 * The build cache, under `<cacheDir>/build`: one JSON entry per step key (`steps/<hex>.json`)
 * naming the layer the step produced, layer blobs (`blobs/sha256/<hex>`), and the directories
 * of `RUN --mount=type=cache` (`mounts/<hex>`). An entry is written, with an atomic rename, only
 * after its layer blob is complete and passed the layer checks, so an interrupted or failed
 * step leaves no entry and the next build runs it again. A step key covers its parent chain,
 * its instruction (after expansion), the build args it sees and the digest of the files it
 * copies (see builder.ts).
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cacheDir } from "../paths.js";

export interface CachedLayer {
  digest: string;
  diffId: string;
  sizeBytes: number;
}

export interface CacheEntry {
  key: string;
  /** Absent when the step changed no file. */
  layer?: CachedLayer;
}

export function stepKey(parts: readonly unknown[]): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex");
}

export class BuildCache {
  readonly blobDir: string;
  constructor(readonly root: string = join(cacheDir(), "build")) {
    this.blobDir = join(root, "blobs");
  }

  blobPath(digest: string): string {
    return join(this.blobDir, "sha256", digest.replace(/^sha256:/, ""));
  }

  private entryPath(key: string): string {
    return join(this.root, "steps", `${key}.json`);
  }

  /** The entry for `key`, only if its layer blob is still there, whole. */
  async get(key: string): Promise<CacheEntry | undefined> {
    let entry: CacheEntry;
    try {
      entry = JSON.parse(await readFile(this.entryPath(key), "utf8")) as CacheEntry;
    } catch {
      return undefined;
    }
    if (entry.key !== key) return undefined;
    if (entry.layer) {
      const st = await stat(this.blobPath(entry.layer.digest)).catch(() => undefined);
      if (st?.size !== entry.layer.sizeBytes) return undefined;
    }
    return entry;
  }

  async put(entry: CacheEntry): Promise<void> {
    const path = this.entryPath(entry.key);
    await mkdir(join(this.root, "steps"), { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      await writeFile(tmp, JSON.stringify(entry));
      await rename(tmp, path);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** The host directory of a `--mount=type=cache` with this id (kept between builds). */
  async mountDir(id: string, mode: number): Promise<string> {
    const dir = join(
      this.root,
      "mounts",
      createHash("sha256").update(id).digest("hex").slice(0, 32),
    );
    await mkdir(join(this.root, "mounts"), { recursive: true, mode: 0o700 });
    await mkdir(dir, { mode }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
    return dir;
  }
}
