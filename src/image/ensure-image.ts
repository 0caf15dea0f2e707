import { WheellockError } from "../errors.js";
import type { ImageRecord } from "./image-store.js";
import { ImageStore } from "./image-store.js";
import { DEFAULT_PLATFORM, formatPlatform } from "./platform.js";
import { pullImage, type PullOptions } from "./pull.js";
import { canonicalReference, parseReference } from "./reference.js";

export interface EnsureImageOptions extends Partial<PullOptions> {
  /** Pull even when the image is stored (`--pull`). */
  forcePull?: boolean;
  /** Accept an image for another platform (`pull --platform`): stored, not bootable. */
  allowOtherPlatform?: boolean;
}

export interface BootableImage {
  record: ImageRecord;
  ext4Path: string;
}

const pulling = new Map<string, Promise<ImageRecord>>();

/**
 * The stored image for `reference`, pulled on first use. Only linux/amd64 images boot (the
 * guest is x86-64), so anything else is refused here with a clear message.
 */
export async function ensureImage(
  reference: string,
  opts: EnsureImageOptions = {},
): Promise<BootableImage> {
  const store = opts.store ?? new ImageStore();
  // A malformed reference is a usage error (ErrInvalidConfig), not an unknown image.
  const ref = parseReference(reference);
  const key = `${store.root}\0${canonicalReference(ref)}`;
  let record = opts.forcePull ? undefined : await store.get(canonicalReference(ref));
  if (!record) {
    // Sandboxes created together for one new image share one pull.
    let pull = pulling.get(key);
    if (!pull) {
      pull = pullImage(reference, { ...opts, store }).finally(() => pulling.delete(key));
      pulling.set(key, pull);
    }
    record = await pull;
  }
  const want = formatPlatform(DEFAULT_PLATFORM);
  if (record.platform !== want && !opts.allowOtherPlatform)
    throw new WheellockError(
      "ErrInvalidConfig",
      `image ${reference} is ${record.platform}; sandboxes run ${want} images`,
    );
  return { record, ext4Path: store.ext4Path(record) };
}
