// Checkpoint and fork figures (issue 16): checkpoint time, pause and size; fork of N copies
// to every copy's first exec done, and the memory each copy's QEMU holds. Numbers, not
// pass/fail (docs/PERFORMANCE.md). `WHEELLOCK_BENCH_FORKS=1,4,16` picks the counts.
import { execFileSync } from "node:child_process";
import { Sandbox, type CheckpointInfo } from "../src/index.js";

export interface ForkFigures {
  checkpoint: CheckpointInfo;
  forks: Array<
    | { count: number; toAllFirstExecMs: number; rssPerCopyMb: number }
    | { count: number; error: string }
  >;
}

const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Resident memory of this process's QEMU children, MB. */
function qemuRssMb(): number[] {
  let out = "";
  try {
    out = execFileSync("ps", ["-o", "rss=,comm=", "--ppid", String(process.pid)], {
      encoding: "utf8",
    });
  } catch {
    return [];
  }
  return out
    .split("\n")
    .filter((line) => line.includes("qemu"))
    .map((line) => Number(line.trim().split(/\s+/)[0]) / 1024);
}

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
      const beforeMb = qemuRssMb().reduce((a, b) => a + b, 0);
      const t = now();
      try {
        const copies = await parent.fork(count, { timeoutSeconds: 0 });
        try {
          await Promise.all(copies.map((c) => c.exec(["true"])));
          const toAllFirstExecMs = Math.round(now() - t);
          const rss = qemuRssMb();
          // The parent's QEMU was there before; the copies are what was added.
          const copiesRss = rss.reduce((a, b) => a + b, 0) - beforeMb;
          forks.push({ count, toAllFirstExecMs, rssPerCopyMb: Math.round(copiesRss / count) });
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
