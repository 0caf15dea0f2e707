/** Memory snapshots on disk: find, write atomically, discard, keep the newest few. */
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { rename } from "node:fs/promises";
import { dirname, join } from "node:path";
import { cacheDir, makePrivateDir } from "../paths.js";
import { runToolOk } from "../util/index.js";
import { findQemuBinary, qemuCpuModel } from "../vmm/index.js";

/**
 * Saved VM states ("snapshots") of freshly booted sandboxes, one per distinct boot: the key
 * covers everything the saved memory depends on, so a changed kernel, agent, image, resource
 * size, kernel command line or QEMU binary can never resume a stale state.
 */

/**
 * Bump when what a snapshot holds or how it is restored changes (2: saved running; 3: guest
 * RAM in its own file, mapped by restores, not in the state stream; 4: that file is usable by
 * jailed QEMUs, group SNAPSHOT_RAM_GID; 5: every saved VM has the FUSE port, mounts come
 * after the restore by MOUNT).
 */
export const SNAPSHOT_FORMAT_VERSION = 5;
/** Snapshots are ~100 MB each; keep the most recently used few. */
const KEEP_SNAPSHOTS = 6;
const COMPLETE_MARKER = "complete.json";

export interface SnapshotInputs {
  kernelPath: string;
  initramfsPath: string;
  imagePath: string;
  accel: string;
  vcpus: number;
  memoryMb: number;
  diskSizeMb: number;
  kernelArgs: readonly string[];
  /** NIC MTU, or undefined without a NIC. */
  networkMtu: number | undefined;
  /**
   * The extra-disk slots (drive i read-write or read-only); absent without extra disks. The
   * saved VM has placeholder drives there, and a restore attaches the sandbox's own disks.
   */
  diskSlots?: readonly ("rw" | "ro")[];
}

export interface StoredSnapshot {
  key: string;
  dir: string;
  statePath: string;
  upperDiskPath: string;
  /** Guest RAM as a sparse file of `memoryMb` (VmSpec.memoryFile). */
  memoryPath: string;
}

/** What `complete.json` says about a snapshot (`wheellock snapshot ls`). */
export interface SnapshotMeta {
  key: string;
  createdAt: string;
  /** What the saved VM booted with: what `snapshot push` describes by content digests. */
  inputs?: SnapshotInputs;
  /** `registry/repository@digest` for a snapshot pulled from a registry. */
  origin?: string;
}

/** Identity of a file's content as cheaply as possible: content-addressed paths plus size and mtime. */
function fileIdentity(path: string): string {
  const st = statSync(path);
  return `${path}:${st.size}:${st.mtimeMs}`;
}

export function snapshotKey(inputs: SnapshotInputs): string {
  const identity = {
    format: SNAPSHOT_FORMAT_VERSION,
    kernel: fileIdentity(inputs.kernelPath),
    initramfs: fileIdentity(inputs.initramfsPath),
    image: fileIdentity(inputs.imagePath),
    qemu: fileIdentity(findQemuBinary()),
    accel: inputs.accel,
    cpu: qemuCpuModel(inputs.accel === "kvm" ? "kvm" : "tcg"),
    vcpus: inputs.vcpus,
    memoryMb: inputs.memoryMb,
    diskSizeMb: inputs.diskSizeMb,
    kernelArgs: inputs.kernelArgs,
    networkMtu: inputs.networkMtu ?? null,
    ...(inputs.diskSlots?.length ? { diskSlots: inputs.diskSlots } : {}),
  };
  return createHash("sha256").update(JSON.stringify(identity)).digest("hex").slice(0, 32);
}

export function snapshotsRoot(): string {
  return join(cacheDir(), "snapshots");
}

function stored(key: string, dir: string): StoredSnapshot {
  return {
    key,
    dir,
    statePath: join(dir, "vm.state"),
    upperDiskPath: join(dir, "upper.ext4"),
    memoryPath: join(dir, "ram"),
  };
}

export function findSnapshot(key: string): StoredSnapshot | undefined {
  const dir = join(snapshotsRoot(), key);
  if (!existsSync(join(dir, COMPLETE_MARKER))) return undefined;
  const now = new Date();
  utimesSync(dir, now, now); // recently used: kept by the pruning below
  return stored(key, dir);
}

/** Keys of the complete snapshots held (what a node advertises in `/v1/info`). */
export function listSnapshotKeys(): string[] {
  const root = snapshotsRoot();
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((key) => existsSync(join(root, key, COMPLETE_MARKER)))
    .sort();
}

/** A snapshot that failed to restore is removed so it is never tried again. */
export function discardSnapshot(key: string): void {
  rmSync(join(snapshotsRoot(), key), { recursive: true, force: true });
}

/**
 * Copies a sparse disk image without filling its holes (and shares blocks where the fs can).
 * A full disk is one line naming where space ran out (`code` ENOSPC), as the checkpoint
 * store says it, not cp's output.
 */
export async function copySparse(from: string, to: string): Promise<void> {
  await runToolOk(["cp", "--sparse=always", "--reflink=auto", from, to], (msg) =>
    /No space left on device/.test(msg)
      ? Object.assign(
          new Error(`copying ${from} to ${to} failed: ENOSPC (no space left under ${dirname(to)})`),
          { code: "ENOSPC" },
        )
      : new Error(msg),
  );
}

/**
 * Builds a snapshot in a private temp dir, then renames it into place, so a crash mid-way or
 * two processes saving the same key never leave a half-written snapshot that looks complete.
 */
export async function writeSnapshot(
  key: string,
  fill: (target: StoredSnapshot) => Promise<void>,
  about: Pick<SnapshotMeta, "inputs" | "origin"> = {},
): Promise<void> {
  const root = snapshotsRoot();
  makePrivateDir(root);
  const tmp = join(root, `.tmp-${key}-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { mode: 0o700 });
  try {
    await fill(stored(key, tmp));
    const meta: SnapshotMeta = { key, createdAt: new Date().toISOString(), ...about };
    writeFileSync(join(tmp, COMPLETE_MARKER), JSON.stringify(meta));
    const dest = join(root, key);
    if (existsSync(dest)) return; // another process won the race; keep theirs
    await rename(tmp, dest);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  pruneSnapshots(root);
}

/** Every complete snapshot, most recently used first. */
export function listSnapshots(): Array<SnapshotMeta & StoredSnapshot & { usedAt: Date }> {
  const root = snapshotsRoot();
  const names = existsSync(root) ? readdirSync(root).filter((n) => !n.startsWith(".")) : [];
  const out: Array<SnapshotMeta & StoredSnapshot & { usedAt: Date }> = [];
  for (const name of names) {
    const meta = readSnapshotMeta(name);
    if (meta)
      out.push({
        ...meta,
        ...stored(name, join(root, name)),
        usedAt: statSync(join(root, name)).mtime,
      });
  }
  return out.sort((a, b) => b.usedAt.getTime() - a.usedAt.getTime());
}

/** A complete snapshot's metadata (undefined when absent or half-written). */
export function readSnapshotMeta(key: string): SnapshotMeta | undefined {
  if (!/^[a-f0-9]{32}$/.test(key)) return undefined;
  try {
    const meta = JSON.parse(
      readFileSync(join(snapshotsRoot(), key, COMPLETE_MARKER), "utf8"),
    ) as SnapshotMeta;
    return meta.key === key ? meta : undefined;
  } catch {
    return undefined;
  }
}

/** The files of a complete snapshot, without marking it used. */
export function snapshotFiles(key: string): StoredSnapshot | undefined {
  return readSnapshotMeta(key) ? stored(key, join(snapshotsRoot(), key)) : undefined;
}

function pruneSnapshots(root: string): void {
  const entries = readdirSync(root)
    .filter((name) => !name.startsWith("."))
    .map((name) => ({ name, usedMs: statSync(join(root, name)).mtimeMs }))
    .sort((a, b) => b.usedMs - a.usedMs);
  for (const old of entries.slice(KEEP_SNAPSHOTS)) {
    rmSync(join(root, old.name), { recursive: true, force: true });
  }
}
