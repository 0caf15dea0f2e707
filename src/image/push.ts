import { join } from "node:path";
import { ErrImage, ErrInvalidConfig, WheellockError } from "../errors.js";
import { sha256Digest } from "./blob-store.js";
import { BlobLocations } from "./blob-locations.js";
import { lookupCredentials, type RegistryCredentials } from "./docker-auth.js";
import { ImageStore, type ImageRecord } from "./image-store.js";
import { limiter } from "./limiter.js";
import { MEDIA, type Descriptor } from "./manifest.js";
import { silentProgress, type PullProgress } from "./progress.js";
import { canonicalReference, parseReference, type ImageReference } from "./reference.js";
import { RegistryClient } from "./registry-client.js";
import {
  fileBlobSource,
  pushBlob,
  putManifest,
  type BlobOutcome,
  type BlobSource,
} from "./registry-upload.js";

export interface PushOptions {
  store?: ImageStore;
  /** Registries (host[:port]) to reach over plain HTTP. */
  insecureRegistries?: readonly string[];
  /** Overrides the docker config lookup (tests). */
  credentials?: RegistryCredentials;
  progress?: PullProgress;
  /** Parallel blob uploads (default 4). */
  concurrency?: number;
  /** Blobs up to this size go in one PUT, bigger ones in chunks (default 32 MiB). */
  monolithicMaxBytes?: number;
  /** Chunk size of chunked uploads (default 16 MiB). */
  chunkSizeBytes?: number;
  /** Attempts per step beyond the first, on network errors, 429 and 5xx (default 3). */
  retries?: number;
}

export interface PushResult {
  /** Canonical reference pushed to. */
  reference: string;
  /** Digest of the manifest on the registry (what `name@digest` pins). */
  digest: string;
  /** Bytes of every blob the image consists of. */
  sizeBytes: number;
  /** Bytes that actually crossed the network. */
  uploadedBytes: number;
  blobs: Array<{ digest: string; sizeBytes: number; outcome: BlobOutcome }>;
}

/** What a push sends: a manifest and the blobs it names, config first. */
export interface PushContent {
  manifest: Buffer;
  manifestMediaType: string;
  blobs: BlobSource[];
  /** Repositories of the target registry that may hold these blobs already. */
  mountFrom?: readonly string[];
}

/**
 * Pushes a stored image (`wheellock push IMAGE [TARGET]`) to `target` (default: the image's own
 * reference): every blob the registry lacks, mounted from another repository where possible,
 * then the manifest, byte for byte, so the pushed image has the digest the store knows.
 */
export async function pushImage(
  source: string,
  target: string | undefined,
  opts: PushOptions = {},
): Promise<PushResult> {
  const store = opts.store ?? new ImageStore();
  const rec = await store.get(canonicalReference(parseReference(source)));
  if (!rec)
    throw new WheellockError(
      "ErrNotFound",
      `image not in the local store: ${source} (pull or import it first)`,
    );
  const to = parseReference(target ?? source);
  const manifest = await store.blobs.read(rec.digest);
  const blobs = [configDescriptor(manifest), ...rec.layers].map((d) =>
    fileBlobSource(store.blobs.path(d.digest), d.digest, d.size),
  );
  return pushContent(
    to,
    {
      manifest,
      manifestMediaType: manifestMediaType(manifest),
      blobs,
      mountFrom: sameRegistrySource(rec, to),
    },
    { ...opts, store },
  );
}

/**
 * Pushes a manifest and its blobs to `to` (images and snapshot artifacts alike). Blobs go up to
 * `concurrency` at a time; the manifest only after all of them, so a registry never holds a
 * manifest whose blobs are missing.
 */
export async function pushContent(
  to: ImageReference,
  content: PushContent,
  opts: PushOptions & { store: ImageStore },
): Promise<PushResult> {
  // A target that names a digest other than the manifest's could never be written: say so
  // before any blob goes up, not as the registry's DIGEST_INVALID after all of them did.
  const manifestDigest = sha256Digest(content.manifest);
  if (to.digest !== undefined && to.digest !== manifestDigest)
    throw new ErrInvalidConfig(
      `${canonicalReference(to)} names a digest other than the image's ${manifestDigest}`,
    );
  const progress = opts.progress ?? silentProgress;
  const locations = new BlobLocations(join(opts.store.root, "pushed.json"));
  const client = new RegistryClient(to.registry, {
    insecure: opts.insecureRegistries?.includes(to.registry) ?? false,
    credentials: opts.credentials ?? (await lookupCredentials(to.registry)),
    push: true,
    mountFrom: await mountCandidates(locations, to, content),
    ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
  });
  const abort = new AbortController();
  const limit = limiter(opts.concurrency ?? 4);
  let uploadedBytes = 0;
  const unique = [...new Map(content.blobs.map((b) => [b.digest, b])).values()];
  const outcomes = await Promise.all(
    unique.map((blob) =>
      limit(async () => {
        progress.layer(blob.digest, blob.sizeBytes, false);
        const mountFrom = [
          ...(content.mountFrom ?? []),
          ...(await locations.sources(to.registry, blob.digest)),
        ];
        const outcome = await pushBlob(client, to.repository, blob, {
          mountFrom: [...new Set(mountFrom)],
          ...(opts.monolithicMaxBytes !== undefined
            ? { monolithicMaxBytes: opts.monolithicMaxBytes }
            : {}),
          ...(opts.chunkSizeBytes !== undefined ? { chunkSizeBytes: opts.chunkSizeBytes } : {}),
          ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
          onBytes: (n) => {
            uploadedBytes += n;
            progress.bytes(blob.digest, n);
          },
          signal: abort.signal,
        });
        if (outcome !== "uploaded") progress.layer(blob.digest, blob.sizeBytes, true, outcome);
        progress.layerDone(blob.digest);
        return { digest: blob.digest, sizeBytes: blob.sizeBytes, outcome };
      }).catch((err: unknown) => {
        abort.abort();
        throw err;
      }),
    ),
  );
  progress.status("writing manifest");
  const reference = to.digest ?? to.tag ?? "latest";
  const digest = await putManifest(
    client,
    to.repository,
    reference,
    content.manifest,
    content.manifestMediaType,
  );
  if (to.digest !== undefined && digest !== to.digest)
    throw new ErrImage(`pushed manifest is ${digest}, not the ${to.digest} the target names`);
  await locations.remember(
    to.registry,
    to.repository,
    unique.map((b) => b.digest),
  );
  progress.status("pushed");
  return {
    reference: canonicalReference(to),
    digest,
    sizeBytes: unique.reduce((n, b) => n + b.sizeBytes, 0),
    uploadedBytes,
    blobs: outcomes,
  };
}

/** Every repository of the target registry known to hold one of the blobs (token scopes). */
async function mountCandidates(
  locations: BlobLocations,
  to: ImageReference,
  content: PushContent,
): Promise<string[]> {
  const all = new Set(content.mountFrom ?? []);
  for (const blob of content.blobs)
    for (const repo of await locations.sources(to.registry, blob.digest)) all.add(repo);
  all.delete(to.repository);
  return [...all];
}

function sameRegistrySource(rec: ImageRecord, to: ImageReference): string[] {
  return rec.source === "registry" && rec.registry === to.registry ? [rec.repository] : [];
}

/** The media type a manifest declares, else what its config's type implies. */
function manifestMediaType(manifest: Buffer): string {
  const json = parseJson(manifest);
  if (typeof json.mediaType === "string") return json.mediaType;
  const config = json.config as { mediaType?: unknown } | undefined;
  return config?.mediaType === MEDIA.dockerConfig ? MEDIA.dockerManifest : MEDIA.ociManifest;
}

function configDescriptor(manifest: Buffer): Descriptor {
  const config = parseJson(manifest).config as Partial<Descriptor> | undefined;
  if (typeof config?.digest !== "string" || typeof config.size !== "number")
    throw new ErrImage("stored manifest has no config descriptor");
  return { mediaType: config.mediaType ?? "", digest: config.digest, size: config.size };
}

function parseJson(body: Buffer): Record<string, unknown> {
  try {
    return JSON.parse(body.toString("utf8")) as Record<string, unknown>;
  } catch {
    throw new ErrImage("stored manifest is not JSON");
  }
}
