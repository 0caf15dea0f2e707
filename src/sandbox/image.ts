/** Which image a sandbox boots: the locally built default image, or an OCI image from the store. */
import { DEFAULT_IMAGE } from "../config/index.js";
import type { ImageRuntimeConfig } from "../image/index.js";

/** The name of the image built locally by `wheellock setup` (busybox userland, curl, CA bundle). */
export { DEFAULT_IMAGE as DEFAULT_IMAGE_NAME } from "../config/index.js";

export interface ImageSelection {
  name: string;
  /** The image's ENV; the default image has none beyond the defaults. */
  env: Readonly<Record<string, string>>;
  /** The flattened OCI image to boot; undefined = the locally built default image. */
  ext4Path?: string;
  /** ENTRYPOINT/CMD/USER/WORKDIR of an OCI image (the default image has none). */
  config?: Readonly<ImageRuntimeConfig>;
}

/**
 * Maps an image reference to something bootable: the locally built default image, or an OCI
 * image from the local store, pulled on first use (`image not found: NAME` when no registry
 * has it).
 */
export async function resolveImage(reference: string): Promise<ImageSelection> {
  if (reference === DEFAULT_IMAGE) return { name: reference, env: {} };
  // The registry client and tar code load only for OCI images: the default image needs neither.
  const { ensureImage } = await import("../image/index.js");
  const { record, ext4Path } = await ensureImage(reference);
  return { name: reference, env: record.config.env, ext4Path, config: record.config };
}
