import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { totalmem } from "node:os";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream } from "node:stream/web";
import { createGunzip } from "node:zlib";
import { ErrNotFound, ErrSnapshotMismatch } from "../errors.js";
import {
  canonicalReference,
  connectRegistry,
  freeBytes,
  parseReference,
  readBodyUpTo,
  sha256Digest,
  type RegistryClient,
  type RegistryConnectOptions,
} from "../image/index.js";
import { readSnapshotMeta, snapshotKey, writeSnapshot } from "../sandbox/index.js";
import type { AccelChoice } from "../vmm/index.js";
import {
  MAX_CONFIG_BYTES,
  SIZE_ANNOTATION,
  parseKeyDocument,
  parseSnapshotManifest,
  type LayerDescriptor,
  type SnapshotKeyDocument,
} from "./artifact.js";
import { fitToNode, mismatchError } from "./identity.js";
import { shareSnapshotRam } from "../vmm/index.js";
import { decodeSparse } from "./sparse-codec.js";

export interface SnapshotPullOptions extends RegistryConnectOptions {
  /** The accelerator sandboxes here use (default `$WHEELLOCK_ACCEL`, else detected). */
  accel?: AccelChoice;
}

export interface SnapshotPullResult {
  /** The local key sandboxes of the same configuration find it under. */
  key: string;
  /** `registry/repository@digest` it came from. */
  origin: string;
  /** False when this node had it already. */
  downloaded: boolean;
  snapshot: SnapshotKeyDocument;
}

const MIB = 1024 * 1024;
/** Left free on the snapshot filesystem after a pull, for everything else that writes there. */
const DISK_MARGIN_BYTES = 64 * MIB;

/**
 * `wheellock snapshot pull REF`: fetches a snapshot artifact, checks its key against this
 * node's QEMU, kernel, agent, image and accelerator (any difference: refused, and sandboxes
 * here cold-boot), then downloads its layers into the local snapshot store, each hashed as it
 * streams. Nothing becomes visible before every digest and size matched: the snapshot store
 * renames a complete snapshot into place, or removes it.
 */
export async function pullSnapshot(
  reference: string,
  opts: SnapshotPullOptions = {},
): Promise<SnapshotPullResult> {
  const ref = parseReference(reference);
  const name = canonicalReference(ref);
  const client = await connectRegistry(ref.registry, opts);
  const fetched = await client.getManifest(ref.repository, ref.digest ?? ref.tag ?? "latest");
  if (!fetched) throw new ErrNotFound(`snapshot not found: ${name}`);
  const manifestDigest = sha256Digest(fetched.body);
  if (ref.digest !== undefined && manifestDigest !== ref.digest)
    throw new ErrSnapshotMismatch(`digest mismatch for ${name}: registry sent ${manifestDigest}`);
  const manifest = parseSnapshotManifest(fetched.body);
  const configBody = await fetchSmall(client, ref.repository, manifest.config);
  const doc = parseKeyDocument(configBody);
  const fit = await fitToNode(doc, opts.accel !== undefined ? { accel: opts.accel } : {});
  if (fit.mismatches.length > 0) throw mismatchError(name, fit.mismatches);
  const key = snapshotKey(fit.inputs);
  const origin = `${ref.registry}/${ref.repository}@${manifestDigest}`;
  if (readSnapshotMeta(key)) return { key, origin, downloaded: false, snapshot: doc };
  // A VM larger than this host's memory could never be restored here: refused before a byte
  // is fetched (the artifact says what it wants; nothing else bounds it).
  if (doc.memoryMb * MIB > totalmem())
    throw new ErrSnapshotMismatch(
      `snapshot ${name} needs ${doc.memoryMb} MiB of guest memory, more than this host has`,
    );
  const memoryBytes = doc.memoryMb * MIB;
  const diskBytes = doc.diskSizeMb * MIB;
  expectFileSize(manifest.memory, memoryBytes);
  expectFileSize(manifest.disk, diskBytes);
  await writeSnapshot(
    key,
    async (target) => {
      // One failed layer stops the others' transfers.
      const abort = new AbortController();
      const fetchTo = (desc: LayerDescriptor, path: string): Promise<void> =>
        fetchVerified(client, ref.repository, desc, path, abort.signal).catch((err: unknown) => {
          abort.abort();
          throw err;
        });
      // Layers are verified before anything reads them: the decoder never sees bytes that do
      // not match the manifest.
      const memoryGz = join(target.dir, "ram.gz.part");
      const diskGz = join(target.dir, "disk.gz.part");
      await Promise.all([
        fetchTo(manifest.state, target.statePath),
        fetchTo(manifest.memory, memoryGz),
        fetchTo(manifest.disk, diskGz),
      ]);
      // What the layers decode to is bounded by the free disk (less a margin for everything
      // else on it), whatever sizes the artifact declares.
      const budget = { remainingBytes: (await freeBytes(target.dir)) - DISK_MARGIN_BYTES };
      await Promise.all([
        decodeSparse(gunzipped(memoryGz), target.memoryPath, memoryBytes, budget),
        decodeSparse(gunzipped(diskGz), target.upperDiskPath, diskBytes, budget),
      ]);
      await Promise.all([rm(memoryGz), rm(diskGz)]);
      // As for a locally saved snapshot: restores map it from jailed QEMUs of their own users.
      shareSnapshotRam(target.memoryPath);
    },
    { inputs: fit.inputs, origin },
  );
  return { key, origin, downloaded: true, snapshot: doc };
}

/** The config blob, read into memory only up to its (small) declared size, and verified. */
async function fetchSmall(
  client: RegistryClient,
  repository: string,
  desc: LayerDescriptor,
): Promise<Buffer> {
  const res = await client.getBlob(repository, desc.digest);
  const tooLarge = (): Error =>
    new ErrSnapshotMismatch(`snapshot key blob is larger than its declared ${desc.size} bytes`);
  const body = await readBodyUpTo(res, Math.min(desc.size, MAX_CONFIG_BYTES), tooLarge);
  if (body.length !== desc.size)
    throw new ErrSnapshotMismatch(`snapshot key blob is ${body.length} bytes, not ${desc.size}`);
  if (sha256Digest(body) !== desc.digest)
    throw new ErrSnapshotMismatch(`snapshot key blob does not match its digest ${desc.digest}`);
  return body;
}

/** Downloads a layer to `path`, counting and hashing it; throws (file left for the caller's
 * cleanup) when its size or digest differs from the manifest's. */
async function fetchVerified(
  client: RegistryClient,
  repository: string,
  desc: LayerDescriptor,
  path: string,
  signal: AbortSignal,
): Promise<void> {
  const res = await client.getBlob(repository, desc.digest, signal);
  if (!res.body) throw new ErrSnapshotMismatch(`empty body for snapshot layer ${desc.digest}`);
  const hash = createHash("sha256");
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > desc.size)
        return done(
          new ErrSnapshotMismatch(`snapshot layer ${desc.digest} is larger than declared`),
        );
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(
    Readable.fromWeb(res.body as ReadableStream<Uint8Array>),
    meter,
    createWriteStream(path, { flags: "wx", mode: 0o600 }),
  );
  const got = `sha256:${hash.digest("hex")}`;
  if (size !== desc.size || got !== desc.digest)
    throw new ErrSnapshotMismatch(
      `snapshot layer ${desc.digest} does not match its digest (got ${got}, ${size} bytes); discarded`,
    );
}

/** A verified, gzipped layer file as a stream of its decompressed bytes. */
function gunzipped(path: string): Readable {
  const gunzip = createGunzip();
  const file = createReadStream(path);
  file.on("error", (err) => gunzip.destroy(err));
  return file.pipe(gunzip);
}

function expectFileSize(desc: LayerDescriptor, bytes: number): void {
  const declared = desc.annotations?.[SIZE_ANNOTATION];
  if (declared !== undefined && declared !== String(bytes))
    throw new ErrSnapshotMismatch(
      `snapshot layer ${desc.digest} holds ${declared} bytes; its key says ${bytes}`,
    );
}
