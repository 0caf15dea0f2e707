import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pidAlive } from "../util/process-info.js";
import { removeTreeSync } from "../util/remove-tree.js";

/**
 * Each running sandbox owns a directory (control socket, writable upper disk, logs) under
 * the run dir, stamped with the owning process's pid. Whatever happens to the owner, the
 * directory is removed: on close, on process exit (exit hook), and, if the owner was killed
 * outright, by the next wheellock process that finds the owner dead.
 */
const OWNER_FILE = "owner.pid";

export function createRunDir(root: string, id: string): string {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const dir = join(root, id);
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, OWNER_FILE), `${process.pid}\n`);
  return dir;
}

/** Removes run dirs whose owner process is gone. Returns the ids removed. */
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
      removeTreeSync(dir);
      removed.push(id);
    }
  }
  return removed;
}

type ExitCleanup = () => void;
const exitCleanups = new Set<ExitCleanup>();
let exitHookInstalled = false;

/**
 * Registers synchronous cleanup to run if the host process exits with the sandbox still open
 * (e.g. an uncaught exception). QEMU also has a parent-death signal, so this is about files.
 */
export function onProcessExit(cleanup: ExitCleanup): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => {
      for (const fn of exitCleanups) {
        try {
          fn();
        } catch {
          // best effort: the process is exiting
        }
      }
    });
  }
  exitCleanups.add(cleanup);
  return () => exitCleanups.delete(cleanup);
}
