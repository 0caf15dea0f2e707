/**
 * Who has a disk image attached: one writer, or any number of readers, at a time. Two VMs
 * writing one ext4 image corrupt it, and a reader of an image being written sees garbage.
 * Each attachment is a file `<pid>-<startTicks>.<sandboxId>.<rw|ro>` in a directory named
 * after the image's real path; entries of dead processes are swept, so a crashed sandbox
 * never locks a volume for good. Synchronous so it can be released from an exit handler.
 */
import { createHash } from "node:crypto";
import { readdirSync, realpathSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ErrVolumeInUse } from "../errors.js";
import { dataDir, makePrivateDir } from "../paths.js";
import { processStartTicks, sameProcessAlive } from "../util/index.js";

export interface DiskHolder {
  readonly pid: number;
  readonly sandboxId: string;
  readonly readonly: boolean;
}

export { ErrVolumeInUse };

const ENTRY_RE = /^(\d+)-(\d+)\.([A-Za-z0-9_-]+)\.(rw|ro)$/;

function lockDirFor(imagePath: string): string {
  let real: string;
  try {
    real = realpathSync(imagePath);
  } catch {
    real = imagePath;
  }
  const key = createHash("sha256").update(real).digest("hex").slice(0, 32);
  return join(dataDir(), "disk-locks", key);
}

/** Live attachments of the image; dead ones are removed on the way. */
export function diskHolders(imagePath: string): DiskHolder[] {
  const dir = lockDirFor(imagePath);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const holders: DiskHolder[] = [];
  for (const name of names) {
    const m = ENTRY_RE.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (!sameProcessAlive(pid, Number(m[2]))) {
      rmSync(join(dir, name), { force: true });
      continue;
    }
    holders.push({ pid, sandboxId: m[3]!, readonly: m[4] === "ro" });
  }
  return holders;
}

export interface DiskLock {
  release(): void;
}

/**
 * Records that `sandboxId` attaches the image (read-only or not), or throws ErrVolumeInUse
 * naming the sandbox in the way. The entry is written before the check, so two sandboxes
 * racing for the same image both see each other and both refuse rather than both attach.
 */
export function lockDisk(imagePath: string, sandboxId: string, readonly: boolean): DiskLock {
  const dir = lockDirFor(imagePath);
  makePrivateDir(dir);
  const entry = join(
    dir,
    `${process.pid}-${processStartTicks(process.pid) ?? 0}.${sandboxId}.${readonly ? "ro" : "rw"}`,
  );
  writeFileSync(entry, "");
  const others = diskHolders(imagePath).filter(
    (h) => !(h.pid === process.pid && h.sandboxId === sandboxId),
  );
  const conflict = others.find((h) => !readonly || !h.readonly);
  if (conflict !== undefined) {
    rmSync(entry, { force: true });
    const how = conflict.readonly ? "read-only" : "read-write";
    throw new ErrVolumeInUse(
      `disk ${imagePath} is attached ${how} by sandbox ${conflict.sandboxId}; ` +
        (readonly
          ? "a read-only attach needs no writer"
          : "only one sandbox may attach it read-write"),
    );
  }
  let released = false;
  return {
    release(): void {
      if (released) return;
      released = true;
      try {
        unlinkSync(entry);
      } catch {
        // Already gone (swept by someone who saw this process dead): nothing to release.
      }
    },
  };
}
