// A checkpoint source with no VM that fails loudly if the VM would be stopped or the guest's
// processes held: for the refusals a checkpoint or fork makes before it touches the sandbox.
import { join } from "node:path";
import type { SandboxPlan } from "../../src/config/index.js";
import type { CheckpointSource } from "../../src/sandbox/checkpoint.js";
import type { VmStateSaver } from "../../src/vmm/index.js";

/** `saves` counts the attempts to stop the VM or hold its processes (0: refused in time). */
export function unstoppableSource(
  runDir: string,
  over: {
    mounts?: Record<string, { type: string }>;
    fileOpen?: boolean;
    disks?: readonly unknown[];
    open?: number;
  },
): CheckpointSource & { saves: number } {
  const counted = {
    saves: 0,
    plan: {
      id: "sb-test",
      disks: over.disks ?? [],
      mounts: over.mounts ?? {},
    } as unknown as SandboxPlan,
    saver: {
      save: () => {
        counted.saves += 1;
        return Promise.reject(new Error("the VM must not be stopped"));
      },
    } as unknown as VmStateSaver,
    runDir,
    upperDiskPath: join(runDir, "upper.ext4"),
    namedRam: false,
    vmKey: "k",
    baseSnapshotKey: undefined,
    fuseSession: () =>
      over.fileOpen === true
        ? undefined
        : { initialized: true, inodes: { nextId: "2", nodes: [] } },
    exportMounts: () => Promise.resolve(undefined),
    openStreams: () => over.open ?? 0,
    holdProcesses: () => {
      counted.saves += 1;
      return Promise.reject(new Error("the guest's processes must not be held"));
    },
    onStuck: () => undefined,
    onResumed: () => Promise.resolve(),
  };
  return counted;
}
