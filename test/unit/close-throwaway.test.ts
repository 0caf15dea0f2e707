// close() kills the QEMU of a throwaway sandbox instead of waiting for the guest's power-off
// (issue 16): only when nothing the guest wrote outlives the VM.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planSandbox } from "../../src/config/index.js";
import { isThrowaway } from "../../src/sandbox/launch.js";

test("only a sandbox with no mounts, disks, kept upper disk or detached owner skips the power-off", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "wheellock-throwaway-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal(isThrowaway(planSandbox({}), {}), true);
  const mounted = planSandbox({ mounts: { "/workspace": { type: "host_fs", hostPath: dir } } });
  assert.equal(isThrowaway(mounted, {}), false, "a mount's writes must reach the host");
  writeFileSync(join(dir, "d.ext4"), Buffer.alloc(4096));
  const disk = planSandbox({ disks: [{ hostPath: join(dir, "d.ext4"), guestPath: "/data" }] });
  assert.equal(isThrowaway(disk, {}), false, "a disk's filesystem must be unmounted cleanly");
  assert.equal(isThrowaway(planSandbox({}), { keepUpperDisk: join(dir, "upper") }), false);
  assert.equal(isThrowaway(planSandbox({}), { cleanPoweroff: true }), false);
});
