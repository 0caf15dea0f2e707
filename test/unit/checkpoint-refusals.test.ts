// What a checkpoint or fork refuses before it stops the VM: custom provider mounts (a JS
// object of the sandbox's process; memory and overlay mounts are carried), a file open on a mount (a copy's
// FUSE server could not answer for its handle), or operations in flight. A copy of a checkpoint
// refuses disks of the caller's: the checkpoint's come with it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkpointVm } from "../../src/sandbox/checkpoint.js";
import { withCheckpointDefaults } from "../../src/sandbox/checkpoint-start.js";
import { unstoppableSource as source } from "../helpers/checkpoint-source.js";

for (const [what, over, message] of [
  [
    "a custom provider mount",
    { mounts: { "/p": { type: "provider" } } },
    /mount \/p is a custom provider mount: copies \(checkpoint, fork\) cannot carry/,
  ],
  [
    "a file open on a host mount",
    { mounts: { "/w": { type: "host_fs" } }, fileOpen: true },
    /file open on a mount/,
  ],
  ["an exec in flight", { open: 1 }, /in progress/],
] as const) {
  test(`a sandbox with ${what} is not checkpointed, and never stopped`, async () => {
    const runDir = mkdtempSync(join(tmpdir(), "wl-capture-"));
    try {
      const src = source(runDir, over);
      await assert.rejects(checkpointVm(src, "refused"), (err: Error & { code?: string }) => {
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

test("disks given with fromCheckpoint are refused with one line: the checkpoint's come with it", () => {
  for (const disks of [
    [{ hostPath: "/tmp/x.ext4", guestPath: "/data" }],
    [{ volume: "work", guestPath: "/data", readonly: true }],
  ])
    assert.throws(
      () => withCheckpointDefaults({ fromCheckpoint: "prepared", disks }),
      (err: Error & { code?: string }) =>
        err.code === "ErrInvalidConfig" &&
        /checkpoint prepared has the checkpoint's disks .*never the live image or volume/.test(
          err.message,
        ) &&
        !err.message.includes("\n"),
    );
});
