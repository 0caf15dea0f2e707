// A checkpoint the node's user took locally, with a small fake state in place of a VM's
// memory: for tests of what a node does with a checkpoint's recorded mounts and disks.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { saveCheckpoint, type SaveCheckpointRequest } from "../../src/sandbox/checkpoint-store.js";

export function saveFakeCheckpoint(
  dataDir: string,
  name: string,
  extra: Partial<SaveCheckpointRequest>,
): ReturnType<typeof saveCheckpoint> {
  const state = join(dataDir, "cp-state");
  writeFileSync(state, Buffer.alloc(4096, 1));
  return saveCheckpoint({
    name,
    captured: { statePath: state, upperDiskPath: state },
    sourceSandboxId: "vm-00000003",
    vmKey: "k".repeat(32),
    resources: {
      image: "default",
      cpus: 1,
      memoryMb: 768,
      diskSizeMb: 64,
      privileged: false,
      noNetwork: false,
    },
    namedRam: false,
    pausedMs: 1,
    baseSnapshotKey: undefined,
    ...extra,
  });
}
