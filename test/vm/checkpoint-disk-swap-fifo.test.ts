// A guest that can write the directory holding its disk image swaps it for a symlink to a FIFO
// on the host (any FIFO it can name). Fork and checkpoint open the disk without waiting
// (O_NONBLOCK) and refuse it at once; a blocking open() would wait for a writer and stall the
// whole host process (the SDK caller, or `serve` for every tenant). Found by review rev18b.
// A helper opens the FIFO's write end after 20 s so that a regression fails instead of hanging.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { Sandbox, type VmSandbox } from "../../src/index.js";
import { endWhenDone, isolateDataDir, scratchDir } from "../helpers/vm.js";

isolateDataDir();
endWhenDone();

for (const op of ["checkpoint", "fork"] as const)
  test(`a disk image swapped for a symlink to a host FIFO: ${op} refuses at once`, async () => {
    const dir = scratchDir("disk-fifo-");
    const ws = join(dir, "ws");
    mkdirSync(join(ws, "src"), { recursive: true });
    writeFileSync(join(ws, "src", "f.txt"), "hello\n");
    const fifo = join(dir, "host.fifo");
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
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
    // Unblocks the open after 20 s (the event loop is stuck meanwhile: no timer of ours runs).
    const unblock = spawn("sh", ["-c", `sleep 20; exec 3>${fifo}; sleep 2`], { stdio: "ignore" });
    try {
      // rw.img for a checkpoint (read during capture); ro.img for a fork (QEMU's reattach).
      const victim = op === "checkpoint" ? "rw" : "ro";
      const swap = await sb.exec([
        "sh",
        "-c",
        `rm -f /ws/${victim}.img && ln -s ${fifo} /ws/${victim}.img`,
      ]);
      assert.equal(swap.exitCode, 0, swap.stderr);
      const started = Date.now();
      const result = await (op === "checkpoint" ? sb.checkpoint("fifo") : sb.fork(1)).then(
        () => "completed",
        (err: Error) => `refused: ${err.message}`,
      );
      const ms = Date.now() - started;
      assert.match(result, /^refused/);
      assert.ok(ms < 10_000, `${op} stalled the host process for ${ms} ms on the FIFO (${result})`);
    } finally {
      unblock.kill();
      await sb.close();
    }
  });
