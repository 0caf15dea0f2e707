/**
 * A checkpoint's extra disks (`disks`, `--disk`, named volumes): each disk's bytes at the
 * checkpoint instant go into the chunk store, and every copy started from the checkpoint
 * gets a private sparse file of them in its own run dir, in the same slot, read-only or not
 * as in the source, mounted where the source had it. Never the live image or volume: the
 * copied guest's page cache and ext4 state match those bytes only, and two writers on one
 * ext4 corrupt it.
 */
import { closeSync, constants, fstatSync, statSync, type BigIntStats } from "node:fs";
import { join } from "node:path";
import { MAX_DISKS, type ResolvedDisk, type SandboxPlan } from "../config/index.js";
import { ErrInvalidConfig, ErrSnapshotMismatch } from "../errors.js";
import { fileIdentity } from "../util/index.js";
import { openPinnedFile } from "../vmm/index.js";
import { CHUNK_BYTES, type ChunkedFile } from "./checkpoint-chunks.js";

/** One disk of a checkpoint, in `plan.disks` order (its slot). */
export interface CheckpointDisk {
  guestPath: string;
  readonly: boolean;
  /** The named volume the source attached (shown by `checkpoint ls`; a copy never gets it). */
  volume?: string;
  file: ChunkedFile;
}

/** A disk to put in the store: where its checkpoint-time bytes are, and what it was. */
export interface DiskToStore {
  path: string;
  guestPath: string;
  readonly: boolean;
  volume: string | undefined;
  /** Throws when the file changed while it was read (a read-only disk read in place). */
  unchanged?: () => void;
}

/** Where a copy's private disk i lives: its run dir, removed with it. */
export function privateDiskPath(runDir: string, i: number): string {
  return join(runDir, `disk${i}.img`);
}

/**
 * A disk's image opened for reading as the very file the sandbox attached. Its path may lead
 * elsewhere now: an image in a directory the guest can write (a workspace mount) can be
 * swapped for a symlink to any host file, so a checkpoint or fork never reads it by its path.
 * `path` names the open descriptor (`/proc/<pid>/fd/<n>`, the same file for this process and
 * the children it starts); `unchanged` throws if the file changed since it was opened.
 */
export interface AttachedDiskReader {
  readonly path: string;
  unchanged(): void;
  close(): void;
}

/**
 * Opens disk `index` of a sandbox for reading. A disk the sandbox attached from a host path
 * has the identity pinned at its start (`pinDiskIdentities`): anything else there now is
 * refused. A private copy in the sandbox's own run dir has none (nothing else can write there).
 */
export function openAttachedDisk(
  disk: ResolvedDisk,
  index: number,
  sandboxId: string,
): AttachedDiskReader {
  let fd: number;
  try {
    // Opened only once it is known to be the attached file: a path swapped for a FIFO or a
    // device is refused, never opened (launch-descriptors.ts).
    fd = openPinnedFile(disk.hostPath, constants.O_RDONLY, disk.hostIdentity);
  } catch (err) {
    if (!(err instanceof ErrInvalidConfig)) throw err;
    throw new ErrInvalidConfig(
      `sandbox ${sandboxId}: disk ${index} (${disk.hostPath}) is no longer the file the ` +
        "sandbox attached (it was replaced on the host): refused",
    );
  }
  try {
    const state = (): string => diskState(fstatSync(fd, { bigint: true }));
    const before = state();
    // The guest has read (and cached) the bytes that were there at its start: a rewrite since
    // then would put other bytes in the checkpoint than its memory holds.
    if (disk.attachedState !== undefined && before !== disk.attachedState)
      throw new ErrInvalidConfig(
        `sandbox ${sandboxId}: read-only disk ${disk.hostPath} changed on the host since the ` +
          "sandbox attached it: refused (restart the sandbox to use the new contents)",
      );
    return {
      path: `/proc/${process.pid}/fd/${fd}`,
      unchanged: () => {
        if (state() !== before)
          throw new ErrInvalidConfig(
            `sandbox ${sandboxId}: read-only disk ${disk.hostPath} changed on the host while ` +
              "it was checkpointed: try again",
          );
      },
      close: () => closeSync(fd),
    };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** `openAttachedDisk` for each disk that `wanted` picks (undefined for the others), or none. */
export function openAttachedDisks(
  disks: readonly ResolvedDisk[],
  wanted: (disk: ResolvedDisk, index: number) => boolean,
  sandboxId: string,
): (AttachedDiskReader | undefined)[] {
  const readers: (AttachedDiskReader | undefined)[] = [];
  try {
    for (const [i, d] of disks.entries())
      readers.push(wanted(d, i) ? openAttachedDisk(d, i, sandboxId) : undefined);
  } catch (err) {
    for (const reader of readers) reader?.close();
    throw err;
  }
  return readers;
}

/**
 * The plan a sandbox attaches its disks with: each disk from a host path gets the identity
 * (`dev:ino`) of what is there now, unless a node pinned it already. QEMU's open must find
 * that file (launch-descriptors.ts), and a checkpoint or fork reads that file only.
 * `privateCopies[i]` set: disk i is the sandbox's own copy in its run dir, left as it is.
 */
export function pinDiskIdentities(
  plan: SandboxPlan,
  privateCopies: readonly (string | undefined)[],
): SandboxPlan {
  const pinned = plan.disks.map((d, i): ResolvedDisk => {
    if (privateCopies[i] !== undefined) return d;
    const needState = d.readonly && d.attachedState === undefined;
    if (d.hostIdentity !== undefined && !needState) return d;
    let st: BigIntStats;
    try {
      st = statSync(d.hostPath, { bigint: true });
    } catch (err) {
      throw new ErrInvalidConfig(
        `disk ${i} (${d.hostPath}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    return {
      ...d,
      hostIdentity: d.hostIdentity ?? fileIdentity(st),
      ...(needState ? { attachedState: diskState(st) } : {}),
    };
  });
  if (pinned.every((d, i) => d === plan.disks[i])) return plan;
  return Object.freeze({ ...plan, disks: Object.freeze(pinned) });
}

/**
 * What says a disk image's bytes are as they were: its size and its modification and change
 * times. ctime too: a rewrite in place can put the modification time back, not the change time.
 */
function diskState(st: BigIntStats): string {
  return `${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * The plan of a copy of a checkpoint: its disks are the checkpoint's, each a private file in
 * the copy's run dir (`runDir`, not created yet). Disks given by the caller are refused: they
 * come with the checkpoint, as its mounts do.
 */
export function planWithCheckpointDisks(
  plan: SandboxPlan,
  runDir: string,
  disks: readonly CheckpointDisk[] | undefined,
): SandboxPlan {
  if (plan.disks.length > 0) throw givenDisks(plan.fromCheckpoint ?? "");
  if (!disks || disks.length === 0) return plan;
  const own = disks.map((d, i): ResolvedDisk => ({
    hostPath: privateDiskPath(runDir, i),
    guestPath: d.guestPath,
    readonly: d.readonly,
    volume: undefined,
    hostIdentity: undefined,
  }));
  return Object.freeze({ ...plan, disks: Object.freeze(own) });
}

/**
 * The plan of a fork: disk i, when `captured[i]` is set, is its private copy in the fork's
 * run dir, so that a checkpoint or fork of the fork copies that file, not its source's.
 */
export function planWithCapturedDisks(
  plan: SandboxPlan,
  runDir: string,
  captured: readonly (string | undefined)[],
): SandboxPlan {
  if (!captured.some((c) => c !== undefined)) return plan;
  const own = plan.disks.map((d, i): ResolvedDisk =>
    captured[i] === undefined
      ? d
      : { ...d, hostPath: privateDiskPath(runDir, i), volume: undefined, hostIdentity: undefined },
  );
  return Object.freeze({ ...plan, disks: Object.freeze(own) });
}

/** The refusal for `disks` given with `fromCheckpoint`. */
export function givenDisks(name: string): ErrInvalidConfig {
  return new ErrInvalidConfig(
    `fromCheckpoint: a copy of checkpoint ${name} has the checkpoint's disks (private copies ` +
      "of their content at the checkpoint, never the live image or volume); it cannot be given disks",
  );
}

const GUEST_PATH = /^\/[^\0,:]{0,4095}$/;
const DIGEST_OR_ZERO = /^(0|[a-f0-9]{64})$/;
/** A disk image of up to 16 TiB (ext4's practical limit with 4 KiB blocks). */
const MAX_DISK_BYTES = 16 * 1024 ** 4;

/**
 * Checks a manifest's `disks` field (absent: a checkpoint without disks). Manifests are
 * signed, so this guards against a wheellock bug or an edit made with the key, never trusted
 * input; still, every value is checked before a path or a size is built from it.
 */
export function parseCheckpointDisks(value: unknown): CheckpointDisk[] | undefined {
  if (value === undefined) return undefined;
  const bad = (why: string): never => {
    throw new ErrSnapshotMismatch(`checkpoint disks are malformed: ${why}`);
  };
  if (!Array.isArray(value)) return bad("not a list");
  if (value.length < 1 || value.length > MAX_DISKS)
    return bad(`${value.length} disks (1 to ${MAX_DISKS})`);
  return value.map((raw: unknown, i): CheckpointDisk => {
    const d = raw as Partial<CheckpointDisk> | null;
    if (typeof d !== "object" || d === null) return bad(`disk ${i} is not an object`);
    if (typeof d.guestPath !== "string" || !GUEST_PATH.test(d.guestPath))
      return bad(`disk ${i} has no valid guest path`);
    if (typeof d.readonly !== "boolean") return bad(`disk ${i}: readonly is not a boolean`);
    if (d.volume !== undefined && typeof d.volume !== "string")
      return bad(`disk ${i}: volume is not a string`);
    const file = d.file as Partial<ChunkedFile> | undefined;
    const size = file?.sizeBytes;
    if (!Number.isSafeInteger(size) || (size as number) < 0 || (size as number) > MAX_DISK_BYTES)
      return bad(`disk ${i} has a size of ${String(size)} bytes`);
    const chunks = file?.chunks;
    if (
      !Array.isArray(chunks) ||
      chunks.length !== Math.ceil((size as number) / CHUNK_BYTES) ||
      !chunks.every((c) => typeof c === "string" && DIGEST_OR_ZERO.test(c))
    )
      return bad(`disk ${i}'s chunk list does not match its size`);
    return {
      guestPath: d.guestPath,
      readonly: d.readonly,
      ...(d.volume !== undefined ? { volume: d.volume } : {}),
      file: { sizeBytes: size as number, chunks: chunks as string[] },
    };
  });
}
