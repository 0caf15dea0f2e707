import { pidAlive } from "./process-info.js";
import { open, readFile, stat, unlink } from "node:fs/promises";

export interface FileLockOptions {
  /** Give up waiting for another process after this long. */
  timeoutMs: number;
  pollMs?: number;
  onWait?: (holderPid: number) => void;
}

/**
 * Runs `fn` while holding an exclusive lock file (created with O_EXCL, holding our pid), so two
 * processes preparing the same cache entry do not both spend a minute building it. A lock left by
 * a dead process (killed build) is taken over.
 */
export async function withFileLock<T>(
  lockPath: string,
  opts: FileLockOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let warned = false;
  for (;;) {
    try {
      const fh = await open(lockPath, "wx", 0o644);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = await readPid(lockPath);
    if (holder === undefined ? await olderThanMs(lockPath, 5000) : !pidAlive(holder)) {
      // Stale: the holder died, or died between creating the file and writing its pid (a fresh
      // empty file is left alone: its creator is about to write the pid).
      await unlink(lockPath).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${lockPath} (held by pid ${holder ?? "?"})`);
    if (!warned && holder !== undefined) {
      opts.onWait?.(holder);
      warned = true;
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
  }
  try {
    return await fn();
  } finally {
    await unlink(lockPath).catch(() => undefined);
  }
}

async function readPid(path: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt((await readFile(path, "utf8")).trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

async function olderThanMs(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms;
  } catch {
    return true;
  }
}
