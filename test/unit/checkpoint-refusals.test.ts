// What a checkpoint or fork refuses before it stops the VM: a sandbox with host mounts (two
// copies would otherwise share the parent's FUSE session and could write the same host files;
// `forkMounts` is not implemented), disks, or operations in flight.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SandboxPlan } from "../../src/config/index.js";
import { captureVm, type CheckpointSource } from "../../src/sandbox/checkpoint.js";
import type { VmStateSaver } from "../../src/vmm/index.js";

function source(
  runDir: string,
  over: { hasMounts?: boolean; disks?: readonly unknown[]; open?: number },
): CheckpointSource & { saves: number } {
  const counted = {
    saves: 0,
    plan: { id: "sb-test", disks: over.disks ?? [] } as unknown as SandboxPlan,
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
    hasMounts: over.hasMounts ?? false,
    openStreams: () => over.open ?? 0,
    onStuck: () => undefined,
    onResumed: () => Promise.resolve(),
  };
  return counted;
}

for (const [what, over, message] of [
  ["a read-write host mount", { hasMounts: true }, /has mounts/],
  ["an attached disk", { disks: [{}] }, /disks attached/],
  ["an exec in flight", { open: 1 }, /in progress/],
] as const) {
  test(`a sandbox with ${what} is neither checkpointed nor forked, and never stopped`, async () => {
    const runDir = mkdtempSync(join(tmpdir(), "wl-capture-"));
    try {
      const src = source(runDir, over);
      await assert.rejects(captureVm(src), (err: Error & { code?: string }) => {
        assert.equal(err.code, "ErrInvalidConfig");
        assert.match(err.message, message);
        return true;
      });
      assert.equal(src.saves, 0, "refused before the VM is stopped");
      assert.deepEqual(readdirSync(runDir), [], "no capture dir left");
    } finally {
      rmSync(runDir, { recursive: true, force: true });
    }
  });
}
