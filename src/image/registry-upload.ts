import { createReadStream } from "node:fs";
import { Transform, type Readable } from "node:stream";
import { ErrImage } from "../errors.js";
import { sha256Digest } from "./blob-store.js";
import type { RegistryClient } from "./registry-client.js";

/** A blob to send: its digest and size are known up front, its bytes are read on demand. */
export interface BlobSource {
  digest: string;
  sizeBytes: number;
  /**
   * A stream of the bytes from `startBytes` up to `endBytes` (exclusive; default the end): a
   * chunk, or the rest of a resumed upload.
   */
  open(startBytes: number, endBytes?: number): Readable;
}

/** How a blob reached the registry. */
export type BlobOutcome = "exists" | "mounted" | "uploaded";

export interface BlobUploadOptions {
  /** Repositories of the same registry that may hold the blob (tried as mounts, in order). */
  mountFrom?: readonly string[];
  /** Blobs up to this size go in one PUT; bigger ones in PATCH chunks (default 32 MiB). */
  monolithicMaxBytes?: number;
  /** Size of each PATCH of a chunked upload (default 16 MiB). */
  chunkSizeBytes?: number;
  /** Bytes sent; negative when an attempt's bytes are sent again. */
  onBytes?: (n: number) => void;
  signal?: AbortSignal | undefined;
  /** Attempts per upload step beyond the first (default 3). */
  retries?: number;
}

const DEFAULT_MONOLITHIC_MAX_BYTES = 32 * 1024 * 1024;
const DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024;
const OCTETS = "application/octet-stream";

/**
 * Puts one blob into `repository` the cheapest way the registry allows (distribution spec,
 * "Pushing blobs"): nothing when it is there already (HEAD), a cross-repository mount when a
 * repository we know of has it and the registry agrees, else an upload, monolithic (one PUT)
 * for small blobs and chunked (PATCHes with Content-Range, then a closing PUT) for big ones. A
 * chunk that fails is resumed from the offset the registry confirms (GET on the session).
 */
export async function pushBlob(
  client: RegistryClient,
  repository: string,
  blob: BlobSource,
  opts: BlobUploadOptions = {},
): Promise<BlobOutcome> {
  if (await blobExists(client, repository, blob.digest, opts.signal)) return "exists";
  let session: URL | undefined;
  for (const from of opts.mountFrom ?? []) {
    if (from === repository) continue;
    const mount = await startSession(client, repository, opts.signal, {
      from,
      digest: blob.digest,
    });
    if (mount.mounted) return "mounted";
    // A registry that declines the mount opens an ordinary upload session instead: use it.
    session = mount.location;
    break;
  }
  const retries = opts.retries ?? 3;
  const monolithic = blob.sizeBytes <= (opts.monolithicMaxBytes ?? DEFAULT_MONOLITHIC_MAX_BYTES);
  for (let attempt = 0; ; attempt++) {
    try {
      session ??= (await startSession(client, repository, opts.signal)).location;
      if (monolithic) await putWhole(client, repository, session, blob, opts);
      else await putChunked(client, repository, session, blob, opts, retries);
      return "uploaded";
    } catch (err) {
      // The session is spoilt (or the registry lost it): a new attempt starts a new one.
      session = undefined;
      if (opts.signal?.aborted || attempt >= retries || !retryable(err)) throw err;
      await delay(250 * 2 ** attempt);
    }
  }
}

async function blobExists(
  client: RegistryClient,
  repository: string,
  digest: string,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const res = await client.send(repository, {
    method: "HEAD",
    path: `${repository}/blobs/${digest}`,
    signal,
  });
  await res.body?.cancel();
  if (res.status === 200) return true;
  if (res.status === 404) return false;
  await client.ensureOk(res, repository, `blob ${digest}`);
  return false;
}

/** POST .../blobs/uploads/ (with `mount` and `from` for a mount): 201 mounted, 202 a session. */
async function startSession(
  client: RegistryClient,
  repository: string,
  signal: AbortSignal | undefined,
  mount?: { from: string; digest: string },
): Promise<{ mounted: boolean; location: URL }> {
  const path = new URL(`${repository}/blobs/uploads/`, client.resolve(""));
  if (mount) {
    path.searchParams.set("mount", mount.digest);
    path.searchParams.set("from", mount.from);
  }
  const res = await client.send(repository, {
    method: "POST",
    path,
    headers: { "content-length": "0" },
    signal,
  });
  await client.ensureOk(res, repository, "blob upload");
  await res.body?.cancel();
  if (mount && res.status === 201) return { mounted: true, location: path };
  if (res.status !== 202)
    throw new ErrImage(`registry ${client.registry}: upload start answered HTTP ${res.status}`);
  return { mounted: false, location: nextLocation(client, res, path) };
}

async function putWhole(
  client: RegistryClient,
  repository: string,
  session: URL,
  blob: BlobSource,
  opts: BlobUploadOptions,
): Promise<void> {
  const url = withDigest(session, blob.digest);
  let sent = 0;
  try {
    const res = await client.send(repository, {
      method: "PUT",
      path: url,
      headers: { "content-type": OCTETS, "content-length": String(blob.sizeBytes) },
      body: () => {
        opts.onBytes?.(-sent);
        sent = 0;
        return counted(blob.open(0), (n) => {
          sent += n;
          opts.onBytes?.(n);
        });
      },
      signal: opts.signal,
    });
    await finished(client, repository, res, blob.digest);
  } catch (err) {
    opts.onBytes?.(-sent);
    throw err;
  }
}

async function putChunked(
  client: RegistryClient,
  repository: string,
  session: URL,
  blob: BlobSource,
  opts: BlobUploadOptions,
  retries: number,
): Promise<void> {
  const chunkBytes = Math.max(1, opts.chunkSizeBytes ?? DEFAULT_CHUNK_BYTES);
  let location = session;
  let offset = 0;
  let failures = 0;
  while (offset < blob.sizeBytes) {
    const end = Math.min(blob.sizeBytes, offset + chunkBytes);
    let sent = 0;
    try {
      const res = await client.send(repository, {
        method: "PATCH",
        path: location,
        headers: {
          "content-type": OCTETS,
          "content-length": String(end - offset),
          "content-range": `${offset}-${end - 1}`,
        },
        body: () =>
          counted(blob.open(offset, end), (n) => {
            sent += n;
            opts.onBytes?.(n);
          }),
        signal: opts.signal,
        // A chunk cut short may have been partly stored: resuming asks where it stands.
        retries: 0,
      });
      await client.ensureOk(res, repository, `upload of ${blob.digest}`);
      await res.body?.cancel();
      location = nextLocation(client, res, location);
      offset = confirmedEnd(res) ?? end;
    } catch (err) {
      opts.onBytes?.(-sent);
      if (opts.signal?.aborted || ++failures > retries || !retryable(err)) throw err;
      await delay(250 * 2 ** (failures - 1));
      const status = await uploadStatus(client, repository, location, opts.signal);
      location = status.location;
      opts.onBytes?.(status.offset - offset);
      offset = status.offset;
      continue;
    }
  }
  const res = await client.send(repository, {
    method: "PUT",
    path: withDigest(location, blob.digest),
    headers: { "content-length": "0" },
    signal: opts.signal,
  });
  try {
    await finished(client, repository, res, blob.digest);
  } catch (err) {
    // A registry may still be storing the tail of a chunk that was cut off when it answers the
    // status GET, so the resumed chunk lands at the wrong offset and the blob's digest comes
    // out wrong. Only a fresh session recovers from that.
    if (failures > 0 && err instanceof ErrImage && /DIGEST_INVALID/.test(err.message))
      throw new ErrResumeSpoilt(
        `registry ${client.registry}: upload of ${blob.digest} did not match its digest after a resumed chunk`,
      );
    throw err;
  }
}

/** A resumed chunked upload that the registry assembled wrongly: worth a whole new attempt. */
class ErrResumeSpoilt extends ErrImage {}

/** GET on an upload session: how many bytes the registry holds (its `Range: 0-<last>`). */
async function uploadStatus(
  client: RegistryClient,
  repository: string,
  location: URL,
  signal: AbortSignal | undefined,
): Promise<{ offset: number; location: URL }> {
  const res = await client.send(repository, { path: location, signal });
  await client.ensureOk(res, repository, "upload status");
  await res.body?.cancel();
  return { offset: confirmedEnd(res) ?? 0, location: nextLocation(client, res, location) };
}

/** The offset after the last byte the registry confirmed (`Range: 0-1023` → 1024). */
function confirmedEnd(res: Response): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(res.headers.get("range") ?? "");
  return m?.[1] !== undefined ? Number(m[1]) + 1 : undefined;
}

function nextLocation(client: RegistryClient, res: Response, previous: URL): URL {
  const loc = res.headers.get("location");
  if (!loc) return previous;
  return new URL(loc, client.resolve(""));
}

function withDigest(location: URL, digest: string): URL {
  const url = new URL(location);
  url.searchParams.set("digest", digest);
  return url;
}

async function finished(
  client: RegistryClient,
  repository: string,
  res: Response,
  digest: string,
): Promise<void> {
  await client.ensureOk(res, repository, `upload of ${digest}`);
  await res.body?.cancel();
  const stored = res.headers.get("docker-content-digest");
  if (stored && stored !== digest)
    throw new ErrImage(`registry ${client.registry} stored ${digest} as ${stored}`);
}

/** Network trouble and the registry's own failures are worth another attempt; refusals not. */
function retryable(err: unknown): boolean {
  const message = (err as Error).message ?? "";
  if (err instanceof ErrResumeSpoilt) return true;
  return !(err instanceof ErrImage) || /unreachable|HTTP (5\d\d|429|416|404)/.test(message);
}

function counted(source: Readable, onBytes: (n: number) => void): Readable {
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
  source.on("error", (err) => meter.destroy(err));
  meter.on("close", () => source.destroy());
  return source.pipe(meter);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A blob that is a file on disk (a store blob, a compressed snapshot layer). */
export function fileBlobSource(path: string, digest: string, sizeBytes: number): BlobSource {
  return {
    digest,
    sizeBytes,
    open: (startBytes, endBytes) =>
      createReadStream(path, {
        start: startBytes,
        ...(endBytes !== undefined ? { end: endBytes - 1 } : {}),
        highWaterMark: 1 << 20,
      }),
  };
}

/**
 * PUT a manifest under a tag or digest, byte for byte (its digest is the hash of exactly these
 * bytes). Returns the digest the registry reports, checked against ours.
 */
export async function putManifest(
  client: RegistryClient,
  repository: string,
  reference: string,
  body: Buffer,
  mediaType: string,
): Promise<string> {
  const digest = sha256Digest(body);
  const res = await client.send(repository, {
    method: "PUT",
    path: `${repository}/manifests/${reference}`,
    headers: { "content-type": mediaType, "content-length": String(body.length) },
    body: () => body,
  });
  await finished(client, repository, res, digest);
  return digest;
}
