/** Starting a sandbox as a copy of a checkpoint or a fork's capture instead of booting. */
import { rmSync } from "node:fs";
import { checkForkMounts, mountsForCopy, type SandboxOptions } from "../config/index.js";
import { ErrInvalidConfig, ErrSnapshotMismatch } from "../errors.js";
import { bootVm, type BootRequest } from "./boot.js";
import { givenDisks, privateDiskPath } from "./checkpoint-disks.js";
import { loadCheckpoint, materializeCheckpoint } from "./checkpoint-store.js";
import type { Capture } from "./checkpoint.js";
import { copySparse } from "./snapshot-store.js";
import type { StartedVm } from "./start-vm.js";

/** A saved VM to start from: a fork's capture, or a checkpoint written out of the store. */
export type RestoreSource = Pick<
  Capture,
  "statePath" | "upperDiskPath" | "namedRam" | "vmKey" | "fuse" | "mountContents"
> & {
  label: string;
  /** Copies of read-write disks (Capture.disks): each goes to the sandbox's own drive i. */
  disks?: readonly (string | undefined)[];
};

/**
 * The options a copy of checkpoint `options.fromCheckpoint` starts with: the checkpoint's
 * image and VM shape unless the caller gives them (a different shape is refused at start),
 * its mounts as `forkMounts` says (its guest has them mounted already), and no disks of the
 * caller's (the checkpoint's come with it: planWithCheckpointDisks).
 */
export function withCheckpointDefaults<T extends SandboxOptions>(options: T): T {
  const { forkMounts, ...rest } = options;
  if (options.fromCheckpoint === undefined) {
    if (forkMounts !== undefined)
      throw new ErrInvalidConfig(
        "forkMounts applies to a start from a checkpoint (fromCheckpoint)",
      );
    return options;
  }
  const mode = forkMounts === undefined ? "overlay" : checkForkMounts("forkMounts", forkMounts);
  if (options.mounts !== undefined && Object.keys(options.mounts).length > 0)
    throw new ErrInvalidConfig(
      `fromCheckpoint: a copy of checkpoint ${options.fromCheckpoint} has the checkpoint's mounts ` +
        "(forkMounts says how it may write them); it cannot be given others",
    );
  if (options.disks !== undefined && options.disks.length > 0)
    throw givenDisks(options.fromCheckpoint);
  const { resources, mounts } = loadCheckpoint(options.fromCheckpoint);
  return { ...resources, ...rest, mounts: mountsForCopy(mounts ?? {}, mode) } as T;
}

/**
 * Checks that checkpoint `name` fits the VM this sandbox would boot (`vmKey`: same kernel,
 * agent, image, QEMU, shape and disk slots), then writes its state, disk and extra disks
 * into the run dir (the disks straight into the copy's own drives).
 */
export async function checkpointRestoreSource(
  name: string,
  runDir: string,
  vmKey: string,
  plan: {
    disks: readonly { hostPath: string; guestPath: string; readonly: boolean }[];
    mounts: Readonly<Record<string, unknown>>;
  },
): Promise<RestoreSource> {
  const manifest = loadCheckpoint(name);
  // The copied guest has the checkpoint's disks mounted: each slot must be its private copy.
  const disks = manifest.disks ?? [];
  if (
    plan.disks.length !== disks.length ||
    plan.disks.some(
      (d, i) =>
        d.hostPath !== privateDiskPath(runDir, i) ||
        d.guestPath !== disks[i]?.guestPath ||
        d.readonly !== disks[i]?.readonly,
    )
  )
    throw givenDisks(name);
  // The copied guest has the checkpoint's mount points bound to its FUSE session already.
  const served = Object.keys(plan.mounts).sort().join(",");
  if (
    served !==
    Object.keys(manifest.mounts ?? {})
      .sort()
      .join(",")
  )
    throw new ErrInvalidConfig(
      `fromCheckpoint: a copy of checkpoint ${name} must have the checkpoint's mounts ` +
        "(they come with it: do not give mounts)",
    );
  if (manifest.vmKey !== vmKey)
    throw new ErrSnapshotMismatch(
      `checkpoint ${name} was taken with another kernel, agent, image, QEMU or VM shape ` +
        "(memory, cpus, disk size, network, privileged) than this sandbox would have: refused " +
        "(take it again)",
    );
  const files = await materializeCheckpoint(manifest, runDir);
  return {
    ...files,
    namedRam: manifest.namedRam,
    vmKey,
    fuse: manifest.fuse,
    label: `checkpoint ${name}`,
  };
}

/** Resumes the saved VM with the sandbox's own disk copy, network link and CONFIGURE. */
export async function restoreVm(
  req: BootRequest,
  source: RestoreSource,
  vmKey: string,
): Promise<StartedVm> {
  if (source.vmKey !== vmKey)
    throw new ErrSnapshotMismatch(`${source.label} does not fit this sandbox's VM: refused`);
  if (source.upperDiskPath !== req.upperDiskPath)
    await copySparse(source.upperDiskPath, req.upperDiskPath);
  for (const [i, captured] of (source.disks ?? []).entries()) {
    const own = req.extraDisks?.[i]?.path;
    if (captured === undefined) continue;
    if (own === undefined || own === captured)
      throw new ErrInvalidConfig(`${source.label}: disk ${i} has no drive of its own to go to`);
    await copySparse(captured, own);
  }
  const vm = await bootVm({
    ...req,
    restoreStatePath: source.statePath,
    restoreRamInStream: true,
    namedRam: source.namedRam,
  });
  return { ...vm, restored: true };
}

/** A checkpoint's state file written into the run dir is read once, at the restore. */
export function dropMaterializedState(source: RestoreSource, runDir: string): void {
  if (source.statePath.startsWith(`${runDir}/`)) rmSync(source.statePath, { force: true });
}

/** So are its mounts' contents, once imported (FuseMounts.importContents). */
export function dropMaterializedMounts(source: RestoreSource, runDir: string): void {
  const path = source.mountContents?.dataPath;
  if (path?.startsWith(`${runDir}/`)) rmSync(path, { force: true });
}
