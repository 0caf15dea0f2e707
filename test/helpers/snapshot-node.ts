// One sandbox start on a "node" (this process's WHEELLOCK_CACHE_DIR / WHEELLOCK_DATA_DIR):
// prints whether it restored from a snapshot, how long the start took, and a command's output.
import { Sandbox } from "../../src/index.js";

// WHEELLOCK_TEST_DISKS="rw.ext4,ro.ext4": a read-write disk at /data and a read-only one at
// /ro, and the command reads the read-only one.
const disks = process.env.WHEELLOCK_TEST_DISKS?.split(",");
const started = performance.now();
const sb = await Sandbox.create(
  disks
    ? {
        disks: [
          { hostPath: disks[0] ?? "", guestPath: "/data" },
          { hostPath: disks[1] ?? "", guestPath: "/ro", readonly: true },
        ],
      }
    : {},
);
try {
  const command = disks ? "echo x > /data/x && cat /ro/msg" : "echo hello from $(hostname)";
  const r = await sb.exec(["sh", "-c", command]);
  process.stdout.write(
    `${JSON.stringify({
      restored: sb.restoredFromSnapshot,
      startToFirstExecMs: Math.round(performance.now() - started),
      stdout: r.stdout,
      exitCode: r.exitCode,
    })}\n`,
  );
} finally {
  await sb.close();
}
