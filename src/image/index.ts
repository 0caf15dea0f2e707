/**
 * Images: the locally built default image, and OCI images pulled from registries or imported
 * from tarballs into a local store, each flattened into one read-only ext4 the guest boots.
 */
export { ensureImage, type BootableImage, type EnsureImageOptions } from "./ensure-image.js";
export { ImageStore, type ImageRecord } from "./image-store.js";
export type { ImageRuntimeConfig } from "./image-config.js";
export { importImage, type ImportOptions } from "./import.js";
export { pullImage, type PullOptions } from "./pull.js";
export { parsePlatform, formatPlatform, DEFAULT_PLATFORM, type Platform } from "./platform.js";
export type { PullProgress } from "./progress.js";
export {
  parseReference,
  canonicalReference,
  familiarRepository,
  type ImageReference,
} from "./reference.js";
export { createEmptyExt4, formatEmptyExt4 } from "./ext4.js";
export { ensureDefaultImage, type DefaultImage } from "./default-image.js";
