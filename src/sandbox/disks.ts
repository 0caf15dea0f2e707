/**
 * A sandbox's extra disks (`disks` option / `--disk`): their attach locks, the QEMU drives and
 * the kernel command-line word telling the guest agent where to mount each one.
 */
import { CmdlineKey, extraDiskSerial, kernelArg } from "../channel/index.js";
import type { ResolvedDisk } from "../config/index.js";
import { lockDisk, type DiskLock } from "../volumes/index.js";
import type { VmDisk } from "../vmm/index.js";

export class SandboxDisks {
  private constructor(
    private readonly disks: readonly ResolvedDisk[],
    private readonly locks: DiskLock[],
  ) {}

  /**
   * Takes every attach lock, or none (ErrVolumeInUse names the sandbox in the way). Disks
   * that are `private` (by index: a fork's own copy of its source's disk) take no lock.
   */
  static attach(
    sandboxId: string,
    disks: readonly ResolvedDisk[],
    privateCopies: readonly (string | undefined)[] = [],
  ): SandboxDisks {
    const locks: DiskLock[] = [];
    try {
      for (const [i, disk] of disks.entries())
        if (privateCopies[i] === undefined)
          locks.push(lockDisk(disk.hostPath, sandboxId, disk.readonly));
    } catch (err) {
      for (const lock of locks) lock.release();
      throw err;
    }
    return new SandboxDisks(disks, locks);
  }

  get vmDisks(): VmDisk[] {
    return this.vmDisksWith([]);
  }

  /**
   * The QEMU drives; `privatePaths[i]`, when set, is served in place of disk i's image (with
   * its read-only flag: a virtio feature the copied guest negotiated).
   */
  vmDisksWith(privatePaths: readonly (string | undefined)[]): VmDisk[] {
    return this.disks.map((d, i) => {
      const own = privatePaths[i];
      if (own !== undefined)
        return { path: own, serial: extraDiskSerial(i), readonly: d.readonly, cache: "writeback" };
      return this.vmDisk(d, i);
    });
  }

  private vmDisk(d: ResolvedDisk, i: number): VmDisk {
    return {
      path: d.hostPath,
      serial: extraDiskSerial(i),
      readonly: d.readonly,
      cache: "writeback",
      ...(d.hostIdentity !== undefined ? { identity: d.hostIdentity } : {}),
    };
  }

  /** What DISK_MOUNT mounts (a VM that may be saved or was restored): disk i at entry i. */
  get guestMounts(): { guestPath: string; readonly: boolean }[] {
    return this.disks.map((d) => ({ guestPath: d.guestPath, readonly: d.readonly }));
  }

  /**
   * `wheellock.disks=/a,/b:ro`: guest path of disk i at position i (paths have no `,` `:`), for
   * a VM that is never saved: its agent mounts them at boot.
   */
  get kernelArgs(): string[] {
    if (this.disks.length === 0) return [];
    const list = this.disks.map((d) => (d.readonly ? `${d.guestPath}:ro` : d.guestPath));
    return [kernelArg(CmdlineKey.Disks, list.join(","))];
  }

  release(): void {
    for (const lock of this.locks) lock.release();
  }
}
