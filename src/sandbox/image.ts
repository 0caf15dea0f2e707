import { WheellockError } from "../errors.js";

/** The name of the image built locally by `wheellock setup` (busybox userland, curl, CA bundle). */
export { DEFAULT_IMAGE as DEFAULT_IMAGE_NAME } from "../config/index.js";
import { DEFAULT_IMAGE } from "../config/index.js";

export interface ImageSelection {
  name: string;
  /** The image's ENV; the default image has none beyond the defaults. */
  env: Readonly<Record<string, string>>;
}

/**
 * Maps an image reference to something bootable. Only the locally built default image exists
 * until the OCI image store lands; any other reference fails clearly instead of silently
 * running the default.
 */
export function resolveImage(reference: string): ImageSelection {
  if (reference === DEFAULT_IMAGE) return { name: reference, env: {} };
  throw new WheellockError(
    "ErrNotFound",
    `image not found: ${reference} (registry images are not supported yet; omit --image for the default image)`,
  );
}
