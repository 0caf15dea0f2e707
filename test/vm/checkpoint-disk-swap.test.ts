// A guest that can write the host directory holding its disk images (a workspace mount) swaps
// an image for a symlink to a host file, or to a host FIFO (any it can name). A fork or a
// checkpoint reads the files the sandbox attached, never what their paths lead to now: both are
// refused in one line and at once (a path is located with O_PATH, never opened before its
// identity is checked: a blocking open of a FIFO would stall the whole host process), no copy
// ever holds the host file's bytes, and the source goes on. Found by reviews rev18 and rev18b:
// disks used to be copied, and opened, by path.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { Sandbox, type VmSandbox } from "../../src/index.js";
import { listCheckpoints } from "../../src/sandbox/index.js";
import { endWhenDone, isolateDataDir, scratchDir } from "../helpers/vm.js";

isolateDataDir();
endWhenDone();

const REPLACED =
  /disk \d \(.*\.img\) is no longer the file the sandbox attached|is no longer the file that was checked/;

/** A sandbox whose read-only and read-write disk images lie in its own workspace mount. */
async function sandboxWithImagesInItsWorkspace(dir: string): Promise<VmSandbox> {
  const ws = join(dir, "ws");
  mkdirSync(join(ws, "src"), { recursive: true });
  writeFileSync(join(ws, "src", "f.txt"), "hello\n");
  for (const [img, from] of [
    ["ro.img", ["-d", join(ws, "src")]],
    ["rw.img", []],
  ] as const) {
    const r = spawnSync("mkfs.ext4", ["-q", ...from, join(ws, img), "8M"]);
    assert.equal(r.status, 0, String(r.stderr));
  }
  return (await Sandbox.create({
    mounts: { "/ws": { type: "host_fs", hostPath: ws } },
    disks: [
      { hostPath: join(ws, "ro.img"), guestPath: "/ro", readonly: true },
      { hostPath: join(ws, "rw.img"), guestPath: "/rwd" },
    ],
  })) as VmSandbox;
}

async function swap(sb: VmSandbox, images: string[], target: string): Promise<void> {
  const links = images.map((i) => `rm -f /ws/${i}.img && ln -s ${target} /ws/${i}.img`);
  const r = await sb.exec(["sh", "-c", links.join(" && ")]);
  assert.equal(r.exitCode, 0, r.stderr);
}

test("a disk image swapped for a symlink by the guest: fork and checkpoint refuse, the source goes on", async () => {
  const dir = scratchDir("disk-swap-");
  const secret = join(dir, "secret.bin");
  writeFileSync(secret, "HOST-SECRET\n".repeat(10000));
  const sb = await sandboxWithImagesInItsWorkspace(dir);
  try {
    await swap(sb, ["ro", "rw"], secret);
    await assert.rejects(sb.fork(1), { code: "ErrInvalidConfig", message: REPLACED });
    await assert.rejects(sb.checkpoint("swapped"), { code: "ErrInvalidConfig", message: REPLACED });
    assert.deepEqual(listCheckpoints(), [], "nothing was saved");
    const alive = await sb.exec(["sh", "-c", "cat /ro/f.txt && echo ok > /rwd/x && cat /rwd/x"]);
    assert.equal(alive.stdout, "hello\nok\n", alive.stderr);
  } finally {
    await sb.close();
  }
});

for (const op of ["checkpoint", "fork"] as const)
  test(`a disk image swapped for a symlink to a host FIFO: ${op} refuses at once`, async () => {
    const dir = scratchDir("disk-fifo-");
    const fifo = join(dir, "host.fifo");
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
    const sb = await sandboxWithImagesInItsWorkspace(dir);
    // Unblocks a waiting open after 20 s (the event loop would be stuck meanwhile), so that a
    // regression fails instead of hanging.
    const unblock = spawn("sh", ["-c", `sleep 20; exec 3>${fifo}; sleep 2`], { stdio: "ignore" });
    try {
      // rw.img for a checkpoint (read during the capture); ro.img for a fork (QEMU's reattach).
      await swap(sb, [op === "checkpoint" ? "rw" : "ro"], fifo);
      const started = Date.now();
      await assert.rejects(op === "checkpoint" ? sb.checkpoint("fifo") : sb.fork(1), {
        code: "ErrInvalidConfig",
        message: REPLACED,
      });
      const ms = Date.now() - started;
      assert.ok(ms < 10_000, `${op} stalled the host process for ${ms} ms on the FIFO`);
    } finally {
      unblock.kill();
      await sb.close();
    }
  });
