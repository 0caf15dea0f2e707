import { ErrImage } from "../errors.js";

/** Errno codes and tool messages that mean the filesystem (or the user's quota) is full. */
const FULL_CODES = new Set(["ENOSPC", "EDQUOT"]);
const FULL_TEXT = /No space left on device|Disk quota exceeded/i;

/**
 * Whether `err` (or anything in its cause chain) is a full disk. Checked through causes and
 * message text because the condition arrives as a raw errno from our own writes, but only as
 * text from tools such as mkfs.ext4 and debugfs.
 */
export function isDiskFull(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 8; depth++) {
    const { code, message, cause } = e as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof code === "string" && FULL_CODES.has(code)) return true;
    if (typeof message === "string" && FULL_TEXT.test(message)) return true;
    e = cause;
  }
  return false;
}

/**
 * The one-line error a pull or import ends with when the cache filesystem fills up: the raw
 * failure (often a multi-line mkfs log, or a bare errno on some temp path) says neither what
 * was being stored nor what to do about it.
 */
export function diskFullError(what: string, dir: string, cause: unknown): ErrImage {
  return new ErrImage(
    `no space left on device: ${what} does not fit in ${dir}; free some space there or set WHEELLOCK_CACHE_DIR to a roomier filesystem (nothing partial was kept)`,
    { cause },
  );
}

/**
 * Runs a store operation (pull, import) and turns a full disk anywhere inside it into the one
 * clear error above. Safe to report like this because blobs only appear once verified and an
 * image's record only after its ext4, so a full disk leaves nothing that looks complete.
 */
export async function reportingDiskFull<T>(
  what: string,
  dir: string,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (isDiskFull(err)) throw diskFullError(what, dir, err);
    throw err;
  }
}
