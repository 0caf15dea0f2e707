// One sandbox start on a "node" (this process's WHEELLOCK_CACHE_DIR / WHEELLOCK_DATA_DIR):
// prints whether it restored from a snapshot, how long the start took, and a command's output.
import { Sandbox } from "../../src/index.js";

const started = performance.now();
const sb = await Sandbox.create({});
try {
  const r = await sb.exec(["sh", "-c", "echo hello from $(hostname)"]);
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
