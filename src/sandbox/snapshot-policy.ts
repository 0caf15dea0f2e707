/** Which starts may use a memory snapshot, and the key that says which snapshot fits. */
import type { ResolvedSandboxConfig } from "../config/index.js";
import { defaultAddressing } from "../net/index.js";
import type { BootRequest } from "./boot.js";
import { guestNetworkArgs } from "./network.js";
import { snapshotKey, type SnapshotInputs } from "./snapshot-store.js";

/**
 * Whether a start may use (or save) a memory snapshot. A snapshot holds a guest saved right
 * after its boot, before anything of a sandbox reached it; everything that differs between
 * sandboxes is applied after the restore (guest-apply.ts): hostname, clock, entropy, mounts
 * (a fresh FUSE session, over the FUSE port every such VM has), network setup. What cannot
 * change after a restore is in the key (snapshotInputsFor).
 *
 * Still booting cold: extra disks (the saved guest has no such devices; hot-plugging them
 * into a microvm is not possible) and wheellock's own extra raw ports (benchmarks).
 */
export function mayUseSnapshot(
  plan: Pick<ResolvedSandboxConfig, "snapshot" | "disks">,
  internal: { rawPorts?: readonly unknown[] },
): boolean {
  if (!plan.snapshot) return false;
  if (internal.rawPorts && internal.rawPorts.length > 0) return false;
  return plan.disks.length === 0;
}

/** The key of a start's snapshot; undefined when it may use none. */
export function snapshotKeyFor(
  config: ResolvedSandboxConfig,
  req: Parameters<typeof snapshotInputsFor>[1],
  internal: { rawPorts?: readonly unknown[] },
): string | undefined {
  return mayUseSnapshot(config, internal) ? snapshotKey(snapshotInputsFor(config, req)) : undefined;
}

/** What the snapshot of this start depends on (its key's inputs). */
export function snapshotInputsFor(
  config: Pick<ResolvedSandboxConfig, "diskSizeMb">,
  req: Pick<
    BootRequest,
    | "kernelPath"
    | "initramfsPath"
    | "imagePath"
    | "accel"
    | "cpus"
    | "memoryMb"
    | "kernelArgs"
    | "network"
  >,
): SnapshotInputs {
  const addressing = req.network?.addressing ?? defaultAddressing();
  return {
    kernelPath: req.kernelPath,
    initramfsPath: req.initramfsPath,
    imagePath: req.imagePath,
    accel: req.accel,
    vcpus: req.cpus,
    memoryMb: req.memoryMb,
    diskSizeMb: config.diskSizeMb,
    // The guest's network settings come from the command line the saved kernel booted with.
    kernelArgs: req.network ? [...req.kernelArgs, ...guestNetworkArgs(addressing)] : req.kernelArgs,
    networkMtu: req.network ? addressing.mtuBytes : undefined,
  };
}
