import { createReadStream } from "node:fs";
import { readBodyUpTo } from "./bounded-body.js";
import { Readable } from "node:stream";
import { ErrImage, WheellockError } from "../errors.js";
import { sha256Digest } from "./blob-store.js";
import { isDiskFull, reportingDiskFull } from "./disk-full.js";
import { limiter } from "./limiter.js";
import { lookupCredentials, type RegistryCredentials } from "./docker-auth.js";
import { parseImageConfig } from "./image-config.js";
import type { ImageRecord, ImageStore } from "./image-store.js";
import { newImageRecord } from "./image-record.js";
import { parseManifest, type Descriptor, type ManifestDocument } from "./manifest.js";
import { DEFAULT_PLATFORM, formatPlatform, platformMatches, type Platform } from "./platform.js";
import { silentProgress, type PullProgress } from "./progress.js";
import { canonicalReference, parseReference, type ImageReference } from "./reference.js";
import { RegistryClient } from "./registry-client.js";

const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

export interface PullOptions {
  store: ImageStore;
  platform?: Platform;
  /** Registries (host[:port]) to reach over plain HTTP. */
  insecureRegistries?: readonly string[];
  progress?: PullProgress;
  /** Parallel blob downloads (default 4). */
  concurrency?: number;
  /** Overrides the docker config lookup (tests). */
  credentials?: RegistryCredentials;
}

/**
 * Pulls `reference` into the store and returns its record: manifest (via the index for the
 * platform), config, layers in parallel (verified, retried, skipped when already stored), then the
 * flattened ext4 (skipped when this image config was flattened before).
 */
export async function pullImage(reference: string, opts: PullOptions): Promise<ImageRecord> {
  return reportingDiskFull(`pulling ${reference}`, opts.store.root, () =>
    pullInto(reference, opts),
  );
}

async function pullInto(reference: string, opts: PullOptions): Promise<ImageRecord> {
  const ref = parseReference(reference);
  const platform = opts.platform ?? DEFAULT_PLATFORM;
  const progress = opts.progress ?? silentProgress;
  const client = new RegistryClient(ref.registry, {
    insecure: opts.insecureRegistries?.includes(ref.registry) ?? false,
    credentials: opts.credentials ?? (await lookupCredentials(ref.registry)),
  });
  const { manifest, digest } = await resolveManifest(client, ref, platform, opts.store);
  const configBody = await fetchSmallBlob(client, ref.repository, manifest.config, opts.store);
  const config = parseImageConfig(configBody);
  if (config.diffIds.length !== manifest.layers.length)
    throw new ErrImage(
      `${reference}: manifest has ${manifest.layers.length} layers, config lists ${config.diffIds.length}`,
    );
  const downloads = new Map<string, Promise<void>>();
  // A failed pull stops the other layers' transfers instead of leaving them running.
  const abort = new AbortController();
  const rootfs = await opts.store
    .ensureRootfs(manifest.config.digest, async () => {
      const limit = limiter(opts.concurrency ?? 4);
      for (const layer of manifest.layers) {
        if (downloads.has(layer.digest)) continue;
        const cached = await opts.store.blobs.has(layer.digest, layer.size);
        progress.layer(layer.digest, layer.size, cached);
        const p = cached
          ? Promise.resolve()
          : limit(() =>
              downloadBlob(client, ref.repository, layer, opts.store, progress, abort.signal),
            );
        const done = p.then(() => progress.layerDone(layer.digest));
        // Failures surface when the layer is opened; a layer never opened (an earlier one
        // failed) must not become an unhandled rejection.
        done.catch(() => undefined);
        downloads.set(layer.digest, done);
      }
      return manifest.layers.map((layer, i) => ({
        name: layer.digest,
        diffId: config.diffIds[i] ?? "",
        sizeBytes: layer.size,
        open: async () => {
          await downloads.get(layer.digest);
          if (i === 0) progress.status("unpacking");
          return createReadStream(opts.store.blobs.path(layer.digest), { highWaterMark: 1 << 20 });
        },
      }));
    })
    .catch((err: unknown) => {
      abort.abort();
      throw err;
    });
  // When the ext4 already existed nothing was downloaded: it is what boots; blobs only serve
  // re-flattening. Otherwise every download has been awaited by now.
  await Promise.allSettled(downloads.values());
  const rec = newImageRecord({
    ref,
    digest,
    configDigest: manifest.config.digest,
    platform: formatPlatform({
      os: config.os ?? platform.os,
      architecture: config.architecture ?? platform.architecture,
    }),
    layers: manifest.layers,
    rootfsPath: rootfs.path,
    rootfsSizeBytes: rootfs.sizeBytes,
    created: config.created,
    source: "registry",
    config: config.runtime,
  });
  await opts.store.put(rec);
  progress.status("ready");
  return rec;
}

async function resolveManifest(
  client: RegistryClient,
  ref: ImageReference,
  platform: Platform,
  store: ImageStore,
): Promise<{ manifest: ManifestDocument; digest: string }> {
  const name = canonicalReference(ref);
  const notFound = (): WheellockError =>
    new WheellockError("ErrNotFound", `image not found: ${name}`);
  const top = await client.getManifest(ref.repository, ref.digest ?? ref.tag ?? "latest");
  if (!top) throw notFound();
  let digest = sha256Digest(top.body);
  if (ref.digest !== undefined && digest !== ref.digest)
    throw new ErrImage(`digest mismatch for ${name}: registry sent ${digest}`);
  let doc = parseManifest(top.body, top.contentType);
  let body = top.body;
  if (doc.kind === "index") {
    const chosen = doc.manifests.find((m) => platformMatches(m.platform, platform));
    if (!chosen) {
      const have = doc.manifests
        .map((m) => m.platform && `${m.platform.os}/${m.platform.architecture}`)
        .filter((p) => p && p !== "unknown/unknown");
      throw new ErrImage(
        `${name} has no ${formatPlatform(platform)} image (available: ${have.join(", ") || "none"})`,
      );
    }
    await store.blobs.putBuffer(digest, top.body);
    const inner = await client.getManifest(ref.repository, chosen.digest);
    if (!inner) throw notFound();
    digest = sha256Digest(inner.body);
    if (digest !== chosen.digest)
      throw new ErrImage(`digest mismatch for ${name} manifest ${chosen.digest}: got ${digest}`);
    doc = parseManifest(inner.body, inner.contentType);
    body = inner.body;
    if (doc.kind !== "manifest") throw new ErrImage(`${name}: nested indexes are not supported`);
  }
  await store.blobs.putBuffer(digest, body);
  return { manifest: doc, digest };
}

async function fetchSmallBlob(
  client: RegistryClient,
  repository: string,
  desc: Descriptor,
  store: ImageStore,
): Promise<Buffer> {
  if (!(await store.blobs.has(desc.digest, desc.size))) {
    // Configs are read into memory: a registry must not make us buffer gigabytes.
    if (desc.size > MAX_CONFIG_BYTES)
      throw new ErrImage(`image config ${desc.digest} is ${desc.size} bytes; refusing over 16 MiB`);
    const res = await client.getBlob(repository, desc.digest);
    const body = await readBodyUpTo(
      res,
      desc.size,
      () =>
        new ErrImage(`image config ${desc.digest} is larger than its declared ${desc.size} bytes`),
    );
    await store.blobs.putBuffer(desc.digest, body);
  }
  return store.blobs.read(desc.digest);
}

async function downloadBlob(
  client: RegistryClient,
  repository: string,
  desc: Descriptor,
  store: ImageStore,
  progress: PullProgress,
  signal: AbortSignal,
): Promise<void> {
  // A transfer cut short mid-body is retried from the start (fetch retries only the request).
  for (let attempt = 1; ; attempt++) {
    let sent = 0;
    try {
      const res = await client.getBlob(repository, desc.digest, signal);
      const body = res.body as import("node:stream/web").ReadableStream<Uint8Array> | null;
      if (!body)
        throw new ErrImage(`registry ${client.registry}: empty body for blob ${desc.digest}`);
      await store.blobs.putStream(desc.digest, () => Readable.fromWeb(body), {
        expectedSize: desc.size,
        onBytes: (n) => {
          sent += n;
          progress.bytes(desc.digest, n);
        },
      });
      return;
    } catch (err) {
      progress.bytes(desc.digest, -sent);
      // A full disk stays full: retrying would only write the same bytes again.
      if (err instanceof ErrImage || isDiskFull(err) || signal.aborted || attempt >= 3) throw err;
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}
