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
 * (a fresh FUSE session, over the FUSE port every such VM has), extra disks (DISK_MOUNT: the
 * saved guest has placeholder drives in their slots, start-vm.ts), network setup. What cannot
 * change after a restore is in the key (snapshotInputsFor), the disk slots included.
 *
 * Still booting cold: wheellock's own extra raw ports (benchmarks).
 */
export function mayUseSnapshot(
  plan: Pick<ResolvedSandboxConfig, "snapshot">,
  internal: { rawPorts?: readonly unknown[] },
): boolean {
  if (!plan.snapshot) return false;
  return !internal.rawPorts || internal.rawPorts.length === 0;
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
  config: Pick<ResolvedSandboxConfig, "diskSizeMb" | "disks">,
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
    // A drive's read-only flag is a virtio feature the saved guest negotiated at its boot.
    ...(config.disks.length > 0 ? { diskSlots: diskSlots(config.disks) } : {}),
  };
}

/** One entry per extra disk: what its slot's drive must be in the VM a snapshot is saved from. */
export function diskSlots(disks: readonly { readonly: boolean }[]): ("rw" | "ro")[] {
  return disks.map((d) => (d.readonly ? "ro" : "rw"));
}
