/**
 * Images: the locally built default image, and OCI images pulled from registries or imported
 * from tarballs into a local store, each flattened into one read-only ext4 the guest boots.
 */
export type { BootableImage, EnsureImageOptions } from "./ensure-image.js";
export { ImageStore, type ImageRecord } from "./image-store.js";
export { newImageRecord } from "./image-record.js";
export type { ImageRuntimeConfig } from "./image-config.js";
export type { ImportOptions } from "./import.js";
export type { PullOptions } from "./pull.js";
export type { PushOptions, PushResult, PushContent } from "./push.js";
export type { BlobOutcome, BlobSource } from "./registry-upload.js";
export type { RegistryClient } from "./registry-client.js";
export type { RegistryConnectOptions } from "./registry-connect.js";
export type { RegistryCredentials } from "./docker-auth.js";
export { DigestMeter } from "./digest-meter.js";
export { readBodyUpTo } from "./bounded-body.js";
export { MEDIA as IMAGE_MEDIA_TYPES } from "./manifest.js";
export {
  checkRunPlatform,
  parsePlatform,
  formatPlatform,
  DEFAULT_PLATFORM,
  type Platform,
} from "./platform.js";
export type { PullProgress } from "./progress.js";
export {
  parseReference,
  canonicalReference,
  familiarRepository,
  type ImageReference,
} from "./reference.js";
export { createEmptyExt4, formatEmptyExt4 } from "./ext4.js";
export { ensureDefaultImage, type DefaultImage } from "./default-image.js";
// For the image builder (src/build): its layers and images go through the same store.
export { BlobStore, digestHex, sha256Digest } from "./blob-store.js";
export { MEDIA, type Descriptor } from "./manifest.js";
export type { LayerSource, BuildRootfsOptions } from "./rootfs-build.js";
export {
  DEFAULT_LAYER_LIMITS,
  DecompressedBytesCap,
  freeBytes,
  layerBudget,
  type LayerLimits,
} from "./layer-limits.js";

// The pull and import paths (registry client, tar, layer flattening) load on first use: most
// commands and every sandbox on the default image never need them.
type Pull = typeof import("./pull.js");
type Import = typeof import("./import.js");
type Ensure = typeof import("./ensure-image.js");
type Push = typeof import("./push.js");
type Connect = typeof import("./registry-connect.js");
type Upload = typeof import("./registry-upload.js");
type Flatten = typeof import("./rootfs-build.js");

/**
 * Flattens layers into one ext4 with the checks every pulled layer gets (see rootfs-build.ts);
 * the builder uses it for each stage's root disk, so its own layers pass the same rules.
 */
export async function flattenLayers(
  ...args: Parameters<Flatten["buildRootfsExt4"]>
): ReturnType<Flatten["buildRootfsExt4"]> {
  return (await import("./rootfs-build.js")).buildRootfsExt4(...args);
}

/** Pulls an image into the store (see pull.ts). */
export async function pullImage(
  ...args: Parameters<Pull["pullImage"]>
): ReturnType<Pull["pullImage"]> {
  return (await import("./pull.js")).pullImage(...args);
}

/** Imports an image tarball into the store (see import.ts). */
export async function importImage(
  ...args: Parameters<Import["importImage"]>
): ReturnType<Import["importImage"]> {
  return (await import("./import.js")).importImage(...args);
}

/** The stored image for a reference, pulled first when missing (see ensure-image.ts). */
export async function ensureImage(
  ...args: Parameters<Ensure["ensureImage"]>
): ReturnType<Ensure["ensureImage"]> {
  return (await import("./ensure-image.js")).ensureImage(...args);
}

/** Pushes a stored image to a registry (see push.ts). */
export async function pushImage(
  ...args: Parameters<Push["pushImage"]>
): ReturnType<Push["pushImage"]> {
  return (await import("./push.js")).pushImage(...args);
}

/** Pushes any manifest and its blobs (images, snapshot artifacts; see push.ts). */
export async function pushContent(
  ...args: Parameters<Push["pushContent"]>
): ReturnType<Push["pushContent"]> {
  return (await import("./push.js")).pushContent(...args);
}

/** A registry client with stored credentials (see registry-connect.ts). */
export async function connectRegistry(
  ...args: Parameters<Connect["connectRegistry"]>
): ReturnType<Connect["connectRegistry"]> {
  return (await import("./registry-connect.js")).connectRegistry(...args);
}

/** A blob read from a file, for `pushContent` (see registry-upload.ts). */
export async function fileBlobSource(
  ...args: Parameters<Upload["fileBlobSource"]>
): Promise<ReturnType<Upload["fileBlobSource"]>> {
  return (await import("./registry-upload.js")).fileBlobSource(...args);
}
