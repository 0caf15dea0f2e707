// Start figures (issue 7), interleaved round by round so a shared machine's drifting load hits
// every kind alike: bare boot (baseline), cold start, snapshot restore and warm-pool acquire,
// each to the first `exec(["true"])` done. Ratios are taken per round, then the median.
import { Sandbox, type VmSandbox } from "../src/index.js";
import type { Accel } from "../src/vmm/index.js";
import { bareBootMs } from "./baseline-boot.js";

export interface StartRound {
  bareBootMs: number;
  coldMs: number;
  restoreMs: number;
  restoreBootMs: number;
  poolAcquireMs: number;
  poolAcquireToFirstExecMs: number;
}

const now = () => Number(process.hrtime.bigint()) / 1e6;

async function createToFirstExec(snapshot: boolean): Promise<[number, VmSandbox]> {
  const t = now();
  const sb = await Sandbox.create({ snapshot });
  await sb.exec(["true"]);
  return [now() - t, sb];
}

export async function startRounds(
  accel: Accel,
  assets: { kernelPath: string; imagePath: string },
  rounds: number,
  log: (msg: string) => void,
): Promise<StartRound[]> {
  // Make sure the snapshot exists before the first measured restore.
  const [, primer] = await createToFirstExec(true);
  await primer.close();
  const pool = Sandbox.pool({ size: 1 });
  const out: StartRound[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      log(`start round ${i + 1}/${rounds}`);
      const bare = await bareBootMs({ accel, ...assets, memoryMb: 512 });
      const [coldMs, cold] = await createToFirstExec(false);
      await cold.close();
      const [restoreMs, restored] = await createToFirstExec(true);
      if (!restored.restoredFromSnapshot) throw new Error("expected a snapshot restore");
      const restoreBootMs = restored.bootMs;
      await restored.close();
      // Measure a full pool, as a user who made it a while ago would find it; its refill
      // finishes before the next round so it never overlaps another measurement.
      await pool.whenFull();
      const t = now();
      const sb = await pool.acquire();
      const poolAcquireMs = now() - t;
      await sb.exec(["true"]);
      const poolAcquireToFirstExecMs = now() - t;
      await sb.close();
      await pool.whenFull();
      out.push({
        bareBootMs: bare,
        coldMs,
        restoreMs,
        restoreBootMs,
        poolAcquireMs,
        poolAcquireToFirstExecMs,
      });
    }
  } finally {
    await pool.close();
  }
  return out;
}
