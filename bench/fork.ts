// Checkpoint and fork figures (issue 16): checkpoint time, pause and size; fork of N copies
// to every copy's first exec done, and the memory each copy's QEMU holds. Numbers, not
// pass/fail (docs/PERFORMANCE.md). `WHEELLOCK_BENCH_FORKS=1,4,16` picks the counts.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Sandbox, type CheckpointInfo } from "../src/index.js";

export interface ForkFigures {
  checkpoint: CheckpointInfo;
  forks: Array<
    | {
        count: number;
        toAllFirstExecMs: number;
        rssPerCopyMb: number;
        /** Proportional set size: pages shared between QEMUs (page cache) split among them. */
        pssPerCopyMb: number;
      }
    | { count: number; error: string }
  >;
}

const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Resident and proportional memory of this process's QEMU children, MB each. */
function qemuMemoryMb(): { rss: number; pss: number }[] {
  let out = "";
  try {
    out = execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], {
      encoding: "utf8",
    });
  } catch {
    return [];
  }
  return out
    .split("\n")
    .filter((line) => line.includes("qemu"))
    .map((line) => {
      const pid = line.trim().split(/\s+/)[0];
      let rollup = "";
      try {
        rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
      } catch {
        return { rss: 0, pss: 0 };
      }
      const kb = (key: string) =>
        Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(rollup)?.[1] ?? 0);
      return { rss: kb("Rss") / 1024, pss: kb("Pss") / 1024 };
    });
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

export async function forkBench(
  counts: number[],
  log: (msg: string) => void,
): Promise<ForkFigures> {
  const parent = await Sandbox.create({ timeoutSeconds: 0 });
  try {
    await parent.exec(["true"]);
    log("checkpoint");
    const checkpoint = await parent.checkpoint(`bench-${parent.id}`);
    const forks: ForkFigures["forks"] = [];
    for (const count of counts) {
      log(`fork ${count}`);
      const before = qemuMemoryMb();
      const t = now();
      try {
        const copies = await parent.fork(count, { timeoutSeconds: 0 });
        try {
          await Promise.all(copies.map((c) => c.exec(["true"])));
          const toAllFirstExecMs = Math.round(now() - t);
          const after = qemuMemoryMb();
          // The parent's QEMU was there before; the copies are what was added.
          const added = (key: "rss" | "pss") =>
            Math.round((sum(after.map((m) => m[key])) - sum(before.map((m) => m[key]))) / count);
          forks.push({
            count,
            toAllFirstExecMs,
            rssPerCopyMb: added("rss"),
            pssPerCopyMb: added("pss"),
          });
        } finally {
          await Promise.all(copies.map((c) => c.close()));
        }
      } catch (err) {
        forks.push({ count, error: (err as Error).message.split("\n")[0] ?? "" });
      }
    }
    const { removeCheckpoint } = await import("../src/sandbox/index.js");
    await removeCheckpoint(checkpoint.name);
    return { checkpoint, forks };
  } finally {
    await parent.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const counts = (process.env.WHEELLOCK_BENCH_FORKS ?? "1,4").split(",").map(Number);
  const figures = await forkBench(counts, (m) => process.stderr.write(`bench: ${m}\n`));
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}
