/**
 * Checkpoints of a running sandbox: its VM stopped for a moment while its state (devices and
 * RAM) is saved and its writable disk copied, then resumed; the copy goes into the store.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { copyableMountProblem, type ResolvedDisk, type SandboxPlan } from "../config/index.js";
import { ErrInvalidConfig, ErrVMNotRunning } from "../errors.js";
import { removeTreeSync } from "../util/index.js";
import type { FuseSessionState } from "../vfs/index.js";
import type { VmStateSaver } from "../vmm/index.js";
import type { CheckpointInfo } from "./api.js";
import type { MountContents } from "./fuse-mounts.js";
import {
  assertCheckpointNameFree,
  checkName,
  saveCheckpoint,
  type CapturedFiles,
  type CheckpointManifest,
} from "./checkpoint-store.js";
import {
  openAttachedDisks,
  type AttachedDiskReader,
  type DiskToStore,
} from "./checkpoint-disks.js";
import { copySparse } from "./snapshot-store.js";

/** What a running sandbox lends the checkpoint code (launch.ts builds it). */
export interface CheckpointSource {
  plan: SandboxPlan;
  saver: VmStateSaver;
  runDir: string;
  upperDiskPath: string;
  namedRam: boolean;
  /** snapshotKey of the VM's inputs: a restore must compute the same. */
  vmKey: string;
  /** The snapshot the VM resumed from, if any (its disk is the dedup base). */
  baseSnapshotKey: string | undefined;
  /** The guest's FUSE session (FuseMounts.exportSession); undefined while a file is open. */
  fuseSession(): FuseSessionState | undefined;
  /** The memory and overlay mounts' contents, bytes to `dataPath` (FuseMounts.exportContents). */
  exportMounts(dataPath: string): Promise<MountContents | undefined>;
  openStreams(): number;
  /**
   * Holds the guest's processes (their exec's cgroups frozen) for the capture: a copy's must
   * not run before its CONFIGURE gave it its own entropy. `onResumed` lets them go.
   */
  holdProcesses(): Promise<void>;
  /** The VM could not continue after the save: the sandbox must end. */
  onStuck(err: Error): void;
  /**
   * After it continues: its clock stood still while it was stopped (QEMU stops the guest's
   * clock with the VM), so it is set again, its RNG reseeded and its processes let go.
   */
  onResumed(): Promise<void>;
}

/** A capture on disk, for forks (removed once they run) or for the store. */
export interface Capture extends CapturedFiles {
  dir: string;
  namedRam: boolean;
  vmKey: string;
  pausedMs: number;
  /** The mounted guest's FUSE session (only when the sandbox has mounts). */
  fuse: FuseSessionState | undefined;
  /** What its memory and overlay mounts held (each copy gets a copy of its own). */
  mountContents?: MountContents | undefined;
  /**
   * Per extra disk (`plan.disks` order): a copy of each read-write disk as it was at the
   * capture (each copy of the sandbox writes a copy of its own), and of a read-only one that
   * is itself a private copy in the run dir (a copy of a checkpoint: it goes with its run
   * dir); undefined for another read-only disk, which copies attach read-only as it is.
   */
  disks: (string | undefined)[];
}

/**
 * Refuses what a copy could not carry faithfully, and returns the FUSE session the copies
 * take over (their kernel holds its node ids). Mounts: no custom provider (its contents are a
 * JS object of this process), and no file open on them (a copy's server could not answer for
 * its handle). Open streams: an exec or transfer in flight would be cut in the
 * copies with no one to tell.
 */
function assertCheckpointable(source: CheckpointSource): FuseSessionState | undefined {
  const mounts = Object.entries(source.plan.mounts);
  for (const [guestPath, mount] of mounts) {
    const problem = copyableMountProblem(guestPath, mount);
    if (problem !== undefined) throw new ErrInvalidConfig(`sandbox ${source.plan.id}: ${problem}`);
  }
  const open = source.openStreams();
  if (open > 0)
    throw new ErrInvalidConfig(
      `sandbox ${source.plan.id} has ${open} operation(s) in progress (exec, file transfer, port ` +
        "connection; a command given to run -d is one until it ends): a checkpoint needs none " +
        `(it waited ${IDLE_WAIT_MS / 1000} s for them to end); end them and try again, or start ` +
        "the sandbox with run -d and no command and run its work with exec (docs/CHECKPOINTS.md)",
    );
  if (mounts.length === 0) return undefined;
  const session = source.fuseSession();
  if (session === undefined)
    throw new ErrInvalidConfig(
      `sandbox ${source.plan.id} has a file open on a mount (a process in it holds one): ` +
        "a checkpoint waits until none is",
    );
  return session;
}

/**
 * How long a checkpoint waits for the streams of operations that just ended (an exec's or a
 * transfer's stream closes a round trip after its call returned) before refusing.
 */
const IDLE_WAIT_MS = 2000;

async function waitForIdle(source: CheckpointSource): Promise<void> {
  const deadline = Date.now() + IDLE_WAIT_MS;
  const mounts = Object.keys(source.plan.mounts).length > 0;
  // A file the guest closed just now may stay open on the host a few ms more: the guest's
  // relay answers RELEASE itself and sends it on with its next batch (write-behind).
  const busy = (): boolean =>
    source.openStreams() > 0 || (mounts && source.fuseSession() === undefined);
  while (busy() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

/**
 * Whether the capture leaves disk `d` where it is: a read-only disk, unless it is a private
 * copy in the sandbox's own run dir (a copy of a checkpoint's: it goes with that run dir).
 */
function readInPlace(d: ResolvedDisk, runDir: string): boolean {
  return d.readonly && !d.hostPath.startsWith(`${runDir}/`);
}

/** Saves the VM's state and disk into a new private dir under its run dir. */
export async function captureVm(source: CheckpointSource): Promise<Capture> {
  await waitForIdle(source);
  const fuse = assertCheckpointable(source);
  const dir = mkdtempSync(join(source.runDir, "capture-"));
  const { disks } = source.plan;
  const capture: Capture = {
    dir,
    statePath: join(dir, "vm.state"),
    upperDiskPath: join(dir, "upper.ext4"),
    namedRam: source.namedRam,
    vmKey: source.vmKey,
    pausedMs: 0,
    fuse,
    disks: disks.map((d, i) =>
      readInPlace(d, source.runDir) ? undefined : join(dir, `disk${i}.img`),
    ),
  };
  // Opened before the VM stops (a replaced image is refused with nothing paused), read while
  // it is stopped: the files the VM has attached, whatever their paths lead to now.
  let readers: (AttachedDiskReader | undefined)[] = [];
  // Held from here until onResumed (on every way out but a VM that cannot continue).
  let release: "none" | "due" | "done" = "none";
  try {
    readers = openAttachedDisks(disks, (_, i) => capture.disks[i] !== undefined, source.plan.id);
    await source.holdProcesses();
    release = "due";
    // The RAM goes into the stream (not the shared-file shortcut snapshots use): a restored
    // VM's RAM is a private mapping no file holds, and one format serves every source.
    const saved = await source.saver.save(capture.statePath, { ignoreShared: false });
    const copyStarted = Date.now();
    try {
      // Again now that the guest is stopped: what it looked up since the check is in it.
      if (fuse !== undefined) {
        capture.fuse = source.fuseSession();
        if (capture.fuse === undefined)
          throw new ErrInvalidConfig(
            `sandbox ${source.plan.id} opened a file on a mount while it was checkpointed: try again`,
          );
        // Still stopped: nothing changes the mounts' contents while they are read.
        capture.mountContents = await source.exportMounts(join(dir, "mounts.data"));
      }
      // Stopped (QEMU flushed its cache when it stopped): the disks match the saved memory
      // until `resume`.
      await copySparse(source.upperDiskPath, capture.upperDiskPath);
      for (const [i, copy] of capture.disks.entries())
        if (copy !== undefined) await copySparse(readers[i]!.path, copy);
    } finally {
      await saved.resume().catch((err: Error) => {
        const stuck = new ErrVMNotRunning(
          `sandbox ${source.plan.id} could not continue after a checkpoint: ${err.message}`,
        );
        release = "done"; // nothing to let go: the sandbox ends
        source.onStuck(stuck);
        throw stuck;
      });
    }
    capture.pausedMs = saved.downtimeMs + (Date.now() - copyStarted);
    release = "done";
    await source.onResumed();
    return capture;
  } catch (err) {
    removeTreeSync(dir);
    if (release === "due") await source.onResumed().catch(() => undefined);
    throw err;
  } finally {
    for (const reader of readers) reader?.close();
  }
}

export function checkpointInfo(manifest: CheckpointManifest, durationMs: number): CheckpointInfo {
  return {
    name: manifest.name,
    createdAt: manifest.createdAt,
    sourceSandboxId: manifest.sourceSandboxId,
    sizes: {
      ...manifest.sizes,
      mountDataBytes: manifest.sizes.mountDataBytes ?? 0,
      diskDataBytes: manifest.sizes.diskDataBytes ?? 0,
    },
    pausedMs: manifest.pausedMs,
    durationMs,
  };
}

/** `sandbox.checkpoint(name)`: capture, then put it in the store under `name`. */
export async function checkpointVm(
  source: CheckpointSource,
  name: string | undefined,
): Promise<CheckpointInfo> {
  const started = Date.now();
  const chosen = checkName(name ?? `${source.plan.id}-${randomBytes(3).toString("hex")}`);
  // Before the VM is stopped: a taken name would throw the whole capture away.
  assertCheckpointNameFree(chosen);
  const { plan } = source;
  // A read-only disk not copied by the capture is read in place, through the file the
  // sandbox attached, opened now: it must stay as it is until it has been read.
  const inPlace = openAttachedDisks(plan.disks, (d) => readInPlace(d, source.runDir), plan.id);
  let capture: Capture | undefined;
  try {
    capture = await captureVm(source);
    const captured = capture;
    const disks = plan.disks.map((d, i): DiskToStore => {
      const reader = captured.disks[i] === undefined ? inPlace[i] : undefined;
      return {
        path: captured.disks[i] ?? reader?.path ?? d.hostPath,
        guestPath: d.guestPath,
        readonly: d.readonly,
        volume: d.volume,
        ...(reader ? { unchanged: () => reader.unchanged() } : {}),
      };
    });
    const manifest = await saveCheckpoint({
      name: chosen,
      captured: capture,
      sourceSandboxId: plan.id,
      vmKey: capture.vmKey,
      resources: {
        image: plan.image,
        cpus: plan.cpus,
        memoryMb: plan.memoryMb,
        diskSizeMb: plan.diskSizeMb,
        privileged: plan.privileged,
        noNetwork: plan.noNetwork,
      },
      namedRam: capture.namedRam,
      pausedMs: capture.pausedMs,
      ...(capture.fuse ? { mounts: plan.mounts, fuse: capture.fuse } : {}),
      ...(capture.mountContents ? { mountContents: capture.mountContents } : {}),
      ...(disks.length > 0 ? { disks } : {}),
      baseSnapshotKey: source.baseSnapshotKey,
    });
    return checkpointInfo(manifest, Date.now() - started);
  } finally {
    for (const reader of inPlace) reader?.close();
    if (capture !== undefined) removeTreeSync(capture.dir);
  }
}
