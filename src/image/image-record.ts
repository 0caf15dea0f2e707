/**
 * The store's record of one image reference, made the same way whether the image was pulled,
 * imported from a tarball or built here: only where it came from and its documents differ.
 */
import { basename } from "node:path";
import type { ImageRuntimeConfig } from "./image-config.js";
import type { ImageRecord } from "./image-store.js";
import type { Descriptor } from "./manifest.js";
import { canonicalReference, type ImageReference } from "./reference.js";

export interface ImageRecordFields {
  ref: ImageReference;
  /** Digest of the platform manifest. */
  digest: string;
  configDigest: string;
  /** `os/architecture`. */
  platform: string;
  layers: Descriptor[];
  /** The flattened ext4 under the store's `rootfs/`. */
  rootfsPath: string;
  rootfsSizeBytes: number;
  created?: string | undefined;
  source: ImageRecord["source"];
  config: ImageRuntimeConfig;
}

export function newImageRecord(fields: ImageRecordFields): ImageRecord {
  const { ref, layers } = fields;
  return {
    reference: canonicalReference(ref),
    registry: ref.registry,
    repository: ref.repository,
    ...(ref.tag !== undefined ? { tag: ref.tag } : {}),
    digest: fields.digest,
    configDigest: fields.configDigest,
    platform: fields.platform,
    layers,
    sizeBytes: layers.reduce((n, l) => n + l.size, 0),
    rootfsFile: basename(fields.rootfsPath),
    rootfsSizeBytes: fields.rootfsSizeBytes,
    ...(fields.created !== undefined ? { created: fields.created } : {}),
    storedAt: new Date().toISOString(),
    source: fields.source,
    config: fields.config,
  };
}
