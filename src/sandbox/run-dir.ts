/**
 * Per-sandbox run dirs: created owner-stamped, removed at close/exit, swept when their owner
 * died.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makePrivateDir } from "../paths.js";
import { pidAlive, removeTree, removeTreeSync } from "../util/index.js";

/**
 * Each running sandbox owns a directory (control socket, writable upper disk, logs) under
 * the run dir, stamped with the owning process's pid. Whatever happens to the owner, the
 * directory is removed: on close, on process exit (exit hook), and, if the owner was killed
 * outright, by the next wheellock process that finds the owner dead.
 */
const OWNER_FILE = "owner.pid";

export function createRunDir(root: string, id: string): string {
  makePrivateDir(root);
  const dir = join(root, id);
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, OWNER_FILE), `${process.pid}\n`);
  return dir;
}

/** Removes a run dir and whatever the guest left in it. */
export async function removeRunDir(dir: string): Promise<void> {
  await removeTree(dir);
}

/** The same, synchronously, for the process-exit hook (best effort). */
export function removeRunDirAtExit(dir: string): void {
  removeTreeSync(dir);
}

/**
 * Removes run dirs whose owner process is gone. Returns the ids removed. Never throws: a dir
 * that cannot be removed now is left for `wheellock gc` and must not stop this sandbox from
 * starting.
 */
export function sweepStaleRunDirs(root: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const id of entries) {
    const dir = join(root, id);
    let ownerPid: number;
    try {
      ownerPid = Number.parseInt(readFileSync(join(dir, OWNER_FILE), "utf8"), 10);
    } catch {
      continue; // not ours, or still being created
    }
    if (Number.isInteger(ownerPid) && ownerPid > 0 && !pidAlive(ownerPid)) {
      try {
        removeTreeSync(dir);
        removed.push(id);
      } catch {
        // left for `wheellock gc`, which reports why
      }
    }
  }
  return removed;
}
