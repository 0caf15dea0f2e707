/**
 * Named checkpoints on disk: a manifest per name (signed with this user's key) over the
 * content-addressed chunk store (checkpoint-chunks.ts).
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { rename } from "node:fs/promises";
import { join } from "node:path";
import { checkCheckpointName, type MountConfig } from "../config/index.js";
import { ErrInvalidConfig, ErrNotFound, ErrSnapshotMismatch } from "../errors.js";
import { dataDir, makePrivateDir } from "../paths.js";
import { withFileLock } from "../util/index.js";
import type { FuseSessionState, MountImage } from "../vfs/index.js";
import type { MountContents } from "./fuse-mounts.js";
import { ChunkStore, ZERO_CHUNK, type ChunkedFile, type IngestCost } from "./checkpoint-chunks.js";
import {
  parseCheckpointDisks,
  privateDiskPath,
  type CheckpointDisk,
  type DiskToStore,
} from "./checkpoint-disks.js";
import { snapshotFiles } from "./snapshot-store.js";

/** Bump when what a checkpoint holds or how it is restored changes. */
export const CHECKPOINT_FORMAT = 2;
const LOCK_TIMEOUT_MS = 120_000;

/** What a restore starts with unless the caller says otherwise (the VM's shape). */
export interface CheckpointResources {
  image: string;
  cpus: number;
  memoryMb: number;
  diskSizeMb: number;
  privileged: boolean;
  noNetwork: boolean;
}

export interface CheckpointSizes {
  /** The saved device state and RAM stream. */
  stateBytes: number;
  /** Non-zero bytes of the writable disk. */
  upperDataBytes: number;
  /** Bytes of the memory and overlay mounts' files (absent or 0 without such mounts). */
  mountDataBytes?: number;
  /** Non-zero bytes of the extra disks (absent or 0 without disks). */
  diskDataBytes?: number;
  /** What the store grew by for this checkpoint. */
  newBytes: number;
  /** Non-zero bytes already held (the base snapshot's disk, earlier checkpoints). */
  sharedBytes: number;
}

export interface CheckpointManifest {
  format: number;
  name: string;
  createdAt: string;
  sourceSandboxId: string;
  /** Key of what the VM's memory depends on (snapshotKey): kernel, agent, image, QEMU, shape. */
  vmKey: string;
  resources: CheckpointResources;
  /** The RAM block was `wl-ram` (VmSpec.namedRam): a restore must name it the same. */
  namedRam: boolean;
  state: ChunkedFile;
  upper: ChunkedFile;
  sizes: CheckpointSizes;
  /** How long the sandbox was stopped while its state was saved and its disk copied. */
  pausedMs: number;
  /** The sandbox's mounts (host directories), served again to each copy (see forkMounts). */
  mounts?: Record<string, MountConfig>;
  /** The guest's FUSE session over those mounts: the node ids its kernel holds. */
  fuse?: FuseSessionState;
  /** What the memory and overlay mounts held (per guest path), their bytes in `mountData`. */
  mountImages?: Record<string, MountImage>;
  mountData?: ChunkedFile;
  /** The extra disks' bytes at the checkpoint, in slot order (absent: none). */
  disks?: CheckpointDisk[];
}

/** A checkpoint captured from a VM, before it is in the store. */
export interface CapturedFiles {
  statePath: string;
  upperDiskPath: string;
  /** Its memory and overlay mounts' contents (a restore's, written out of the store). */
  mountContents?: MountContents;
}

export function checkpointsRoot(): string {
  return join(dataDir(), "checkpoints");
}

function chunks(): ChunkStore {
  return new ChunkStore(join(checkpointsRoot(), "objects"));
}

function manifestPath(name: string): string {
  return join(checkpointsRoot(), "manifests", `${checkName(name)}.json`);
}

export function checkName(name: string): string {
  return checkCheckpointName("checkpoint name", name);
}

/**
 * This user's key for signing manifests. A manifest that does not verify was not written by
 * wheellock as this user on this machine (copied in, or edited): it is refused, so nobody can
 * hand a sandbox a crafted VM state through the checkpoint directory.
 */
function signingKey(): Buffer {
  const root = makePrivateDir(checkpointsRoot());
  const path = join(root, "key");
  if (!existsSync(path)) {
    try {
      writeFileSync(path, randomBytes(32), { mode: 0o600, flag: "wx" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  return readFileSync(path);
}

function sign(manifest: CheckpointManifest): string {
  return createHmac("sha256", signingKey()).update(JSON.stringify(manifest)).digest("hex");
}

function withStoreLock<T>(fn: () => Promise<T>): Promise<T> {
  makePrivateDir(checkpointsRoot());
  return withFileLock(join(checkpointsRoot(), "lock"), { timeoutMs: LOCK_TIMEOUT_MS }, fn);
}

export interface SaveCheckpointRequest {
  name: string;
  captured: CapturedFiles;
  sourceSandboxId: string;
  vmKey: string;
  resources: CheckpointResources;
  namedRam: boolean;
  pausedMs: number;
  mounts?: Readonly<Record<string, MountConfig>>;
  fuse?: FuseSessionState;
  mountContents?: MountContents;
  /** The extra disks as they were at the checkpoint (slot order). */
  disks?: readonly DiskToStore[];
  /** The snapshot the sandbox started from: its disk goes in first, so only changes cost. */
  baseSnapshotKey: string | undefined;
}

function alreadyExists(name: string): ErrInvalidConfig {
  return new ErrInvalidConfig(`checkpoint ${name} already exists`);
}

/**
 * Refuses a name that is taken, before a sandbox is stopped to be saved under it (the save
 * checks again under the store's lock: two saves may race for one name).
 */
export function assertCheckpointNameFree(name: string): void {
  if (existsSync(manifestPath(name))) throw alreadyExists(name);
}

/**
 * Removes every chunk and temp file no verified manifest names (call under the store's lock):
 * what `rm` leaves, and what a save that failed half way (disk full, killed) wrote.
 */
function sweepUnreferenced(): void {
  const keep = new Set<string>();
  for (const manifest of listCheckpoints()) {
    const files = [manifest.state, manifest.upper, manifest.mountData, ...diskFiles(manifest)];
    for (const file of files)
      for (const digest of file?.chunks ?? []) if (digest !== ZERO_CHUNK) keep.add(digest);
  }
  chunks().sweep(keep);
  const dir = join(checkpointsRoot(), "manifests");
  if (!existsSync(dir)) return;
  for (const file of readdirSync(dir))
    if (file.includes(".json.tmp-")) rmSync(join(dir, file), { force: true });
}

/**
 * Puts a capture in the store under `req.name`. A save that fails (a full disk, an unreadable
 * capture) leaves the store as it was: what it had written is swept before the error goes on.
 */
export async function saveCheckpoint(req: SaveCheckpointRequest): Promise<CheckpointManifest> {
  const path = manifestPath(req.name);
  makePrivateDir(join(checkpointsRoot(), "manifests"));
  return withStoreLock(async () => {
    if (existsSync(path)) throw alreadyExists(req.name);
    try {
      return await storeCheckpoint(req, path);
    } catch (err) {
      try {
        sweepUnreferenced();
      } catch {
        // The original error says more; the next save or `rm` sweeps again.
      }
      const { code, message } = err as NodeJS.ErrnoException;
      if (err instanceof ErrSnapshotMismatch || err instanceof ErrInvalidConfig) throw err;
      throw Object.assign(
        new Error(
          `checkpoint ${req.name} was not saved: ${message}` +
            (code === "ENOSPC" ? ` (no space left under ${checkpointsRoot()})` : ""),
          { cause: err },
        ),
        code === undefined ? {} : { code },
      );
    }
  });
}

async function storeCheckpoint(
  req: SaveCheckpointRequest,
  path: string,
): Promise<CheckpointManifest> {
  const store = chunks();
  // What an earlier save that died half way (killed, host crash) left behind.
  sweepUnreferenced();
  const base = req.baseSnapshotKey ? snapshotFiles(req.baseSnapshotKey) : undefined;
  if (base) await store.ingest(base.upperDiskPath, true);
  const state = await store.ingest(req.captured.statePath, false);
  const upper = await store.ingest(req.captured.upperDiskPath, true);
  // Large files start on a chunk boundary (BlobFile): the same file costs nothing twice.
  const mountData = req.mountContents
    ? await store.ingest(req.mountContents.dataPath, false)
    : undefined;
  const mountCost = mountData?.cost ?? { newBytes: 0, sharedBytes: 0 };
  const disks = await storeDisks(store, req.disks ?? []);
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    name: req.name,
    createdAt: new Date().toISOString(),
    sourceSandboxId: req.sourceSandboxId,
    vmKey: req.vmKey,
    resources: req.resources,
    namedRam: req.namedRam,
    state: state.file,
    upper: upper.file,
    sizes: {
      stateBytes: state.file.sizeBytes,
      upperDataBytes: upper.cost.newBytes + upper.cost.sharedBytes,
      mountDataBytes: mountData?.file.sizeBytes ?? 0,
      diskDataBytes: disks.cost.newBytes + disks.cost.sharedBytes,
      newBytes:
        state.cost.newBytes + upper.cost.newBytes + mountCost.newBytes + disks.cost.newBytes,
      sharedBytes:
        state.cost.sharedBytes +
        upper.cost.sharedBytes +
        mountCost.sharedBytes +
        disks.cost.sharedBytes,
    },
    pausedMs: req.pausedMs,
    ...(req.mounts && req.fuse ? { mounts: { ...req.mounts }, fuse: req.fuse } : {}),
    ...(mountData && req.mountContents
      ? { mountImages: { ...req.mountContents.images }, mountData: mountData.file }
      : {}),
    ...(disks.list.length > 0 ? { disks: disks.list } : {}),
  };
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ manifest, mac: sign(manifest) }), { mode: 0o600 });
  await rename(tmp, path);
  return manifest;
}

/** Each disk's bytes into the store (only where it holds data), checked unchanged after. */
async function storeDisks(
  store: ChunkStore,
  disks: readonly DiskToStore[],
): Promise<{ list: CheckpointDisk[]; cost: IngestCost }> {
  const cost: IngestCost = { newBytes: 0, sharedBytes: 0 };
  const list: CheckpointDisk[] = [];
  for (const disk of disks) {
    const stored = await store.ingest(disk.path, true);
    disk.unchanged?.();
    cost.newBytes += stored.cost.newBytes;
    cost.sharedBytes += stored.cost.sharedBytes;
    list.push({
      guestPath: disk.guestPath,
      readonly: disk.readonly,
      ...(disk.volume !== undefined ? { volume: disk.volume } : {}),
      file: stored.file,
    });
  }
  return { list, cost };
}

function diskFiles(manifest: CheckpointManifest): ChunkedFile[] {
  return (manifest.disks ?? []).map((d) => d.file);
}

/** A checkpoint's manifest, verified: ErrNotFound when absent, ErrSnapshotMismatch when foreign. */
export function loadCheckpoint(name: string): CheckpointManifest {
  const path = manifestPath(name);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new ErrNotFound(`no checkpoint named ${name} (see \`wheellock checkpoint ls\`)`);
  }
  let stored: { manifest?: CheckpointManifest; mac?: unknown };
  try {
    stored = JSON.parse(text) as typeof stored;
  } catch {
    throw new ErrSnapshotMismatch(`checkpoint ${name} is not valid JSON: refused`);
  }
  const manifest = stored.manifest;
  const mac = typeof stored.mac === "string" ? Buffer.from(stored.mac, "hex") : Buffer.alloc(0);
  const expected = manifest ? Buffer.from(sign(manifest), "hex") : Buffer.alloc(32);
  if (!manifest || mac.length !== expected.length || !timingSafeEqual(mac, expected))
    throw new ErrSnapshotMismatch(
      `checkpoint ${name} was not written by wheellock as this user on this machine (or was changed): refused`,
    );
  if (manifest.format !== CHECKPOINT_FORMAT || manifest.name !== name)
    throw new ErrSnapshotMismatch(
      `checkpoint ${name} has format ${manifest.format}, this wheellock reads ${CHECKPOINT_FORMAT}: take it again`,
    );
  const disks = parseCheckpointDisks(manifest.disks);
  return { ...manifest, ...(disks ? { disks } : {}) };
}

/** Every checkpoint that verifies, newest first. */
export function listCheckpoints(): CheckpointManifest[] {
  const dir = join(checkpointsRoot(), "manifests");
  if (!existsSync(dir)) return [];
  const out: CheckpointManifest[] = [];
  for (const file of readdirSync(dir)) {
    if (!file.endsWith(".json")) continue;
    try {
      out.push(loadCheckpoint(file.slice(0, -".json".length)));
    } catch {
      // Foreign, changed or half-written: not offered (a restore of it says why).
    }
  }
  return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/** Removes a checkpoint and every chunk no other checkpoint uses. */
export async function removeCheckpoint(name: string): Promise<void> {
  const path = manifestPath(name);
  await withStoreLock(async () => {
    if (!existsSync(path)) throw new ErrNotFound(`no checkpoint named ${name}`);
    rmSync(path, { force: true });
    sweepUnreferenced();
  });
}

/**
 * Writes a checkpoint's state, disk and extra disks into `dir` (each chunk checked against its
 * digest).
 */
export async function materializeCheckpoint(
  manifest: CheckpointManifest,
  dir: string,
): Promise<CapturedFiles> {
  const files = {
    statePath: join(dir, "checkpoint.state"),
    upperDiskPath: join(dir, "upper.ext4"),
  };
  const store = chunks();
  await store.materialize(manifest.state, files.statePath);
  await store.materialize(manifest.upper, files.upperDiskPath);
  // Each disk straight into the copy's own drive i (planWithCheckpointDisks names them).
  for (const [i, disk] of (manifest.disks ?? []).entries())
    await store.materialize(disk.file, privateDiskPath(dir, i));
  if (manifest.mountData === undefined || manifest.mountImages === undefined) return files;
  const dataPath = join(dir, "mounts.data");
  await store.materialize(manifest.mountData, dataPath);
  return { ...files, mountContents: { images: manifest.mountImages, dataPath } };
}
