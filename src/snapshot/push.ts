import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, statSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { ErrNotFound, ErrSnapshotMismatch } from "../errors.js";
import {
  DigestMeter,
  fileBlobSource,
  ImageStore,
  parseReference,
  pushContent,
  sha256Digest,
  type PushOptions,
  type PushResult,
} from "../image/index.js";
import {
  readSnapshotMeta,
  snapshotFiles,
  snapshotKey,
  snapshotsRoot,
  type SnapshotInputs,
} from "../sandbox/index.js";
import {
  SIZE_ANNOTATION,
  SNAPSHOT_MEDIA,
  snapshotManifest,
  type LayerDescriptor,
} from "./artifact.js";
import { describeSnapshot } from "./identity.js";
import { encodeSparse } from "./sparse-codec.js";

export type SnapshotPushOptions = Omit<PushOptions, "store">;

/**
 * `wheellock snapshot push KEY TARGET`: the local snapshot KEY as an OCI artifact. Its key is
 * re-derived from the recorded inputs first, so a snapshot whose kernel, agent, image or QEMU
 * changed since it was saved is refused rather than described with the new files' digests.
 */
export async function pushSnapshot(
  key: string,
  target: string,
  opts: SnapshotPushOptions = {},
): Promise<PushResult> {
  const meta = readSnapshotMeta(key);
  const files = snapshotFiles(key);
  if (!meta || !files) throw new ErrNotFound(`snapshot not found: ${key}`);
  const inputs: SnapshotInputs | undefined = meta.inputs;
  if (!inputs)
    throw new ErrSnapshotMismatch(
      `snapshot ${key} does not record what it was made from (an older wheellock saved it); start a sandbox again to save a new one`,
    );
  let current: string | undefined;
  try {
    current = snapshotKey(inputs);
  } catch {
    current = undefined; // a file it was made from is gone
  }
  if (current !== key)
    throw new ErrSnapshotMismatch(
      `snapshot ${key} was made from a kernel, agent, image or QEMU that has changed since; it is stale`,
    );
  const doc = await describeSnapshot({ ...meta, inputs });
  const work = join(snapshotsRoot(), `.push-${process.pid}-${randomBytes(4).toString("hex")}`);
  await mkdir(work, { recursive: true, mode: 0o700 });
  try {
    const [memory, disk] = await Promise.all([
      encodeLayer(files.memoryPath, join(work, "ram.gz"), SNAPSHOT_MEDIA.memory),
      encodeLayer(files.upperDiskPath, join(work, "disk.gz"), SNAPSHOT_MEDIA.disk),
    ]);
    const stateSize = statSync(files.statePath).size;
    const state: LayerDescriptor = {
      mediaType: SNAPSHOT_MEDIA.state,
      digest: await digestFile(files.statePath),
      size: stateSize,
    };
    const configBody = Buffer.from(JSON.stringify(doc));
    const config: LayerDescriptor = {
      mediaType: SNAPSHOT_MEDIA.config,
      digest: sha256Digest(configBody),
      size: configBody.length,
    };
    const configPath = join(work, "config.json");
    await pipeline(Readable.from([configBody]), createWriteStream(configPath));
    const manifest = snapshotManifest(
      { config, state, memory: memory.desc, disk: disk.desc },
      doc.createdAt,
    );
    const blobs = await Promise.all([
      fileBlobSource(configPath, config.digest, config.size),
      fileBlobSource(files.statePath, state.digest, state.size),
      fileBlobSource(memory.path, memory.desc.digest, memory.desc.size),
      fileBlobSource(disk.path, disk.desc.digest, disk.desc.size),
    ]);
    return await pushContent(
      parseReference(target),
      { manifest, manifestMediaType: SNAPSHOT_MEDIA.manifest, blobs },
      { ...opts, store: new ImageStore() },
    );
  } catch (err) {
    // Removed meanwhile (`snapshot rm`, a newer build's sweep): say so, not the raw ENOENT.
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && !readSnapshotMeta(key))
      throw new ErrNotFound(`snapshot ${key} was removed while it was being pushed`);
    throw err;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Sparse-encodes and gzips a file into `out`, hashing what is written. */
async function encodeLayer(
  from: string,
  out: string,
  mediaType: string,
): Promise<{ path: string; desc: LayerDescriptor }> {
  const meter = new DigestMeter();
  // Level 1: RAM pages compress ~3x either way, and the push is on a sandbox's critical path
  // to being shareable; gzip's higher levels cost several times the CPU for a few percent.
  await pipeline(
    Readable.from(encodeSparse(from)),
    createGzip({ level: 1 }),
    meter,
    createWriteStream(out, { mode: 0o600 }),
  );
  return {
    path: out,
    desc: {
      mediaType,
      digest: meter.digest(),
      size: meter.sizeBytes,
      annotations: { [SIZE_ANNOTATION]: String(statSync(from).size) },
    },
  };
}

async function digestFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}
