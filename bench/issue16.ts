// Issue 16's figures in ONE run (item 6): cold vs restore for the default image, a host-dir
// workspace mount and an OCI image, and the CLI's `run -- true` cold vs restored vs the SDK's
// restore (bench/restore.ts, interleaved rounds); then checkpoint time and size and fork of
// 1, 4 and 16 copies (bench/fork.ts). Load is recorded before and after each part: on a shared
// machine compare figures of the same run only.
//   flock /work/coord/vm.lock node --import tsx bench/issue16.ts > out.json
// ROUNDS (default 8) and WHEELLOCK_BENCH_FORKS (default 1,4,16) pick the sizes.
import { readFileSync } from "node:fs";
import { detectAccel } from "../src/vmm/index.js";
import { forkBench } from "./fork.js";
import { restoreBench } from "./restore.js";

const load = (): string => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const log = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);

const rounds = Number(process.env.ROUNDS ?? 8);
const counts = (process.env.WHEELLOCK_BENCH_FORKS ?? "1,4,16").split(",").map(Number);
const startedAt = new Date().toISOString();
const loadAtStart = load();
const restore = await restoreBench(rounds, log);
const loadAfterRestore = load();
const fork = await forkBench(counts, log);
process.stdout.write(
  `${JSON.stringify(
    {
      startedAt,
      accel: detectAccel("auto").accel,
      rounds,
      load: { atStart: loadAtStart, afterRestore: loadAfterRestore, atEnd: load() },
      restore,
      fork,
    },
    null,
    2,
  )}\n`,
);
