/**
 * The built image: its config and manifest, stored like a pulled image (blobs in the image
 * store, the flattened root disk under the config digest, then one record per tag, written
 * last), and optionally written as an OCI-layout or `docker load` tar.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { copyFile, link, mkdir, rename, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { pack } from "tar-stream";
import {
  MEDIA,
  newImageRecord,
  parseReference,
  type Descriptor,
  type ImageRecord,
  type ImageStore,
} from "../image/index.js";
import type { StageConfig } from "./config.js";
import { layerSources, type FsState, type RootDisks } from "./fs/root-disks.js";
import { NeedleScanner, type Needle } from "./layer/scanner.js";
import { ErrBuild } from "../errors.js";

const PLATFORM = { os: "linux", architecture: "amd64" };

export interface ImageDocs {
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  digest: string;
  layers: Descriptor[];
}

const sha = (b: Buffer): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

export function imageDocs(
  fs: FsState,
  config: StageConfig,
  createdIso: string,
  needles: readonly Needle[],
): ImageDocs {
  const configBody = config.toJson(
    fs.layers.map((l) => l.diffId),
    createdIso,
    PLATFORM,
  );
  const scanner = new NeedleScanner(needles);
  scanner.push(configBody);
  if (scanner.found !== undefined)
    throw new ErrBuild(
      `the image config would contain ${scanner.found}; refused (use --secret, not --build-arg, for secrets)`,
    );
  const configDigest = sha(configBody);
  const layers: Descriptor[] = fs.layers.map((l) => ({
    mediaType: l.mediaType,
    digest: l.digest,
    size: l.sizeBytes,
  }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: { mediaType: MEDIA.ociConfig, digest: configDigest, size: configBody.length },
      layers,
    }),
  );
  return { config: configBody, configDigest, manifest, digest: sha(manifest), layers };
}

/** Hard link (same filesystem) or copy a blob into place; nothing when already there. */
async function placeBlob(from: string, to: string, sizeBytes: number): Promise<void> {
  if ((await stat(to).catch(() => undefined))?.size === sizeBytes) return;
  const tmp = `${to}.tmp-${process.pid}-${Date.now()}`;
  try {
    await link(from, tmp).catch(() => copyFile(from, tmp));
    await rename(tmp, to);
  } finally {
    await rm(tmp, { force: true });
  }
}

export async function storeImage(
  store: ImageStore,
  tags: readonly string[],
  docs: ImageDocs,
  fs: FsState,
  config: StageConfig,
  disks: RootDisks,
  createdIso: string,
): Promise<ImageRecord[]> {
  const refs = tags.map((t) => parseReference(t));
  await store.blobs.putBuffer(docs.configDigest, docs.config);
  await store.blobs.putBuffer(docs.digest, docs.manifest);
  for (const l of fs.layers) await placeBlob(l.blobPath, store.blobs.path(l.digest), l.sizeBytes);
  // The root disk: already stored under this config, or the one this build flattened (or the
  // base image's, when no layer was added) linked into place, else flattened now.
  const rootfsPath = store.rootfsPathFor(docs.configDigest);
  if (!(await stat(rootfsPath).catch(() => undefined))) {
    await mkdir(dirname(rootfsPath), { recursive: true, mode: 0o700 });
    const made = disks.made(fs);
    const ready = made ? await made : fs.ext4;
    if (ready !== undefined) await placeBlob(ready, rootfsPath, (await stat(ready)).size);
    else await store.ensureRootfs(docs.configDigest, () => Promise.resolve(layerSources(fs)));
  }
  const rootfsSizeBytes = (await stat(rootfsPath)).size;
  const records: ImageRecord[] = [];
  for (const ref of refs) {
    const rec = newImageRecord({
      ref,
      digest: docs.digest,
      configDigest: docs.configDigest,
      platform: `${PLATFORM.os}/${PLATFORM.architecture}`,
      layers: docs.layers,
      rootfsPath,
      rootfsSizeBytes,
      created: createdIso,
      source: "build",
      config: {
        env: Object.fromEntries(config.env),
        ...(config.entrypoint ? { entrypoint: config.entrypoint } : {}),
        ...(config.cmd ? { cmd: config.cmd } : {}),
        ...(config.user !== undefined ? { user: config.user } : {}),
        ...(config.workdir !== undefined ? { workdir: config.workdir } : {}),
      },
    });
    await store.put(rec);
    records.push(rec);
  }
  return records;
}

/** `--output type=oci|docker,dest=FILE`: the image as an archive (temp file, then renamed). */
export async function exportImage(
  type: "oci" | "docker",
  dest: string,
  docs: ImageDocs,
  fs: FsState,
  tags: readonly string[],
): Promise<void> {
  const p = pack();
  const tmp = `${dest}.tmp-${process.pid}`;
  const writing = pipeline(p, createWriteStream(tmp, { mode: 0o644 }));
  const add = (name: string, body: Buffer | string): Promise<void> =>
    new Promise((resolve, reject) => {
      p.entry({ name, mtime: new Date(0), mode: 0o644 }, body, (err) =>
        err ? reject(err) : resolve(),
      );
    });
  const blob = (digest: string): string => `blobs/sha256/${digest.slice(7)}`;
  try {
    await add("oci-layout", JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    const annotations = tags[0] ? { "org.opencontainers.image.ref.name": tags[0] } : undefined;
    await add(
      "index.json",
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociIndex,
        manifests: [
          {
            mediaType: MEDIA.ociManifest,
            digest: docs.digest,
            size: docs.manifest.length,
            ...(annotations ? { annotations } : {}),
          },
        ],
      }),
    );
    if (type === "docker")
      await add(
        "manifest.json",
        JSON.stringify([
          {
            Config: blob(docs.configDigest),
            RepoTags: [...tags],
            Layers: docs.layers.map((l) => blob(l.digest)),
          },
        ]),
      );
    await add(blob(docs.configDigest), docs.config);
    await add(blob(docs.digest), docs.manifest);
    for (const l of fs.layers) {
      await new Promise<void>((resolve, reject) => {
        const entry = p.entry(
          { name: blob(l.digest), size: l.sizeBytes, mtime: new Date(0), mode: 0o644 },
          (err) => (err ? reject(err) : resolve()),
        );
        Readable.from(createReadStream(l.blobPath)).pipe(entry);
      });
    }
    p.finalize();
    await writing;
    await rename(tmp, dest);
  } catch (err) {
    p.destroy();
    await writing.catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}
