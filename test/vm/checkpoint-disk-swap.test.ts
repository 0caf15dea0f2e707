// A guest that can write the host directory holding its disk images (a workspace mount) swaps
// an image for a symlink to a host file. A fork or a checkpoint reads the files the sandbox
// attached, never what their paths lead to now: here both are refused in one line, no copy
// ever holds the host file's bytes, and the source goes on. (Found by review rev18: they
// used to copy the disks by path.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { Sandbox, type VmSandbox } from "../../src/index.js";
import { listCheckpoints } from "../../src/sandbox/index.js";
import { endWhenDone, isolateDataDir, scratchDir } from "../helpers/vm.js";

isolateDataDir();
endWhenDone();

const REPLACED = /disk \d \(.*\.img\) is no longer the file the sandbox attached/;

test("a disk image swapped for a symlink by the guest: fork and checkpoint refuse, the source goes on", async () => {
  const dir = scratchDir("disk-swap-");
  const ws = join(dir, "ws");
  mkdirSync(join(ws, "src"), { recursive: true });
  writeFileSync(join(ws, "src", "f.txt"), "hello\n");
  const secret = join(dir, "secret.bin");
  writeFileSync(secret, "HOST-SECRET\n".repeat(10000));
  for (const [img, from] of [
    ["ro.img", ["-d", join(ws, "src")]],
    ["rw.img", []],
  ] as const) {
    const r = spawnSync("mkfs.ext4", ["-q", ...from, join(ws, img), "8M"]);
    assert.equal(r.status, 0, String(r.stderr));
  }
  const sb = (await Sandbox.create({
    mounts: { "/ws": { type: "host_fs", hostPath: ws } },
    disks: [
      { hostPath: join(ws, "ro.img"), guestPath: "/ro", readonly: true },
      { hostPath: join(ws, "rw.img"), guestPath: "/rwd" },
    ],
  })) as VmSandbox;
  try {
    const swap = await sb.exec([
      "sh",
      "-c",
      `for i in ro rw; do rm -f /ws/$i.img && ln -s ${secret} /ws/$i.img; done`,
    ]);
    assert.equal(swap.exitCode, 0, swap.stderr);
    await assert.rejects(sb.fork(1), { code: "ErrInvalidConfig", message: REPLACED });
    await assert.rejects(sb.checkpoint("swapped"), { code: "ErrInvalidConfig", message: REPLACED });
    assert.deepEqual(listCheckpoints(), [], "nothing was saved");
    const alive = await sb.exec(["sh", "-c", "cat /ro/f.txt && echo ok > /rwd/x && cat /rwd/x"]);
    assert.equal(alive.stdout, "hello\nok\n", alive.stderr);
  } finally {
    await sb.close();
  }
});
