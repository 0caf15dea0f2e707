/**
 * `wheellock cp` for whole directories, like `docker cp`: regular files and directories are
 * copied with their permission bits; symlinks and special files are skipped with a warning
 * (the file API cannot create them). Files stream one at a time, never whole in memory.
 */
import { createReadStream, mkdirSync, readdirSync, lstatSync } from "node:fs";
import { join, posix } from "node:path";
import type { SandboxApi } from "../sandbox/index.js";
import { copyGuestFileOut } from "./cp-file-out.js";

function warn(message: string): void {
  process.stderr.write(`wheellock cp: ${message}\n`);
}

/** Copies the host directory `hostDir` to `guestDir` (created, with parents). */
export async function copyTreeIn(
  sandbox: SandboxApi,
  hostDir: string,
  guestDir: string,
): Promise<void> {
  await sandbox.mkdir(guestDir, { mode: lstatSync(hostDir).mode & 0o7777 });
  for (const entry of readdirSync(hostDir, { withFileTypes: true })) {
    const from = join(hostDir, entry.name);
    const to = posix.join(guestDir, entry.name);
    if (entry.isDirectory()) await copyTreeIn(sandbox, from, to);
    else if (entry.isFile()) {
      await sandbox.writeFile(to, createReadStream(from), { mode: lstatSync(from).mode & 0o7777 });
    } else warn(`skipped ${from}: not a regular file or directory`);
  }
}

/** Copies the guest directory `guestDir` to `hostDir` (created). */
export async function copyTreeOut(
  sandbox: SandboxApi,
  guestDir: string,
  hostDir: string,
  mode: number,
): Promise<void> {
  mkdirSync(hostDir, { recursive: true, mode: mode & 0o7777 });
  for (const entry of await sandbox.listFiles(guestDir)) {
    const from = posix.join(guestDir, entry.name);
    const to = join(hostDir, entry.name);
    if (entry.isDir) await copyTreeOut(sandbox, from, to, entry.mode);
    else if ((entry.mode & 0o170000) === 0o100000) {
      await copyGuestFileOut(sandbox, from, to, {
        sizeBytes: entry.sizeBytes,
        mode: entry.mode & 0o777,
      });
    } else warn(`skipped ${from}: not a regular file or directory`);
  }
}
