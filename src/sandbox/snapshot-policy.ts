/** Which starts may use a memory snapshot, and the key that says which snapshot fits. */
import type { ResolvedSandboxConfig } from "../config/index.js";
import { defaultAddressing } from "../net/index.js";
import type { BootRequest } from "./boot.js";
import { guestNetworkArgs } from "./network.js";
import { snapshotKey, type SnapshotInputs } from "./snapshot-store.js";

/**
 * Which starts may use a memory snapshot, and under which key. A snapshot holds a guest that
 * booted with exactly this kernel command line and these devices; anything that gives a guest
 * per-sandbox state at boot time (extra serial ports, mounts, extra disks) must opt out here.
 *
 * FUSE mounts in particular stay out: the guest kernel mounted them at boot over a session
 * with the host's FUSE server (INIT negotiated, node ids and open handles cached in the
 * guest's dentry and inode caches). A restored guest would keep talking that old session to a
 * new server that knows none of those node ids, and the mount points are part of the boot
 * command line. Making that correct needs the mounts done after restore (by CONFIGURE), not
 * at boot.
 */
export function snapshotKeyFor(...args: Parameters<typeof snapshotInputsFor>): string | undefined {
  const inputs = snapshotInputsFor(...args);
  return inputs ? snapshotKey(inputs) : undefined;
}

/** What the snapshot of this start depends on (its key's inputs); undefined = no snapshot. */
export function snapshotInputsFor(
  config: ResolvedSandboxConfig,
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
  internal: { rawPorts?: unknown[] },
): SnapshotInputs | undefined {
  if (!config.snapshot) return undefined;
  if (internal.rawPorts && internal.rawPorts.length > 0) return undefined;
  // A saved guest has no extra disks mounted (and its page cache could hold another run's
  // view of one): sandboxes with disks always boot.
  if (config.disks.length > 0) return undefined;
  return vmInputs(config, req);
}

/**
 * What a saved state of this VM depends on, whether or not it may use a snapshot: a
 * checkpoint restores only into a VM whose inputs give the same key.
 */
export function vmInputs(
  config: Pick<ResolvedSandboxConfig, "diskSizeMb">,
  req: Parameters<typeof snapshotInputsFor>[1],
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
