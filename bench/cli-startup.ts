// CLI start-up (issue 11): `wheellock version` and `wheellock --help` as whole processes against
// `node -e 0`, the floor any Node CLI pays, interleaved round by round so the ratio holds when
// the machine's speed drifts. Part of `npm run bench`; alone: `npm run bench:cli` (built dist/).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const MAIN = join(fileURLToPath(new URL("..", import.meta.url)), "dist", "cli", "main.js");
const round2 = (n: number): number => Math.round(n * 100) / 100;

function wallMs(args: string[]): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} exited ${r.status}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** min, median and max of the samples. */
function spread(samples: number[]): { min: number; p50: number; max: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (i: number): number => round2(s[i] ?? NaN);
  return { min: at(0), p50: at(Math.floor(s.length / 2)), max: at(s.length - 1), n: s.length };
}

export function cliStartupBench(log: (m: string) => void, rounds = 20): Record<string, unknown> {
  log(`CLI start-up: version, --help and node -e 0, interleaved (${rounds} rounds)`);
  const commands = {
    nodeE0: ["-e", "0"],
    version: [MAIN, "version"],
    help: [MAIN, "--help"],
  };
  for (const args of Object.values(commands)) wallMs(args); // warm the page cache
  const ms = { nodeE0: [] as number[], version: [] as number[], help: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    for (const [name, args] of Object.entries(commands)) {
      ms[name as keyof typeof ms].push(wallMs(args));
    }
  }
  const ratio = (a: number[]) => spread(a.map((v, i) => v / (ms.nodeE0[i] ?? NaN)));
  return {
    baselineNodeE0Ms: spread(ms.nodeE0),
    versionMs: spread(ms.version),
    helpMs: spread(ms.help),
    ratioVersionVsNodeE0: ratio(ms.version),
    ratioHelpVsNodeE0: ratio(ms.help),
    target: "<= 1.5x node -e 0",
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
  process.stdout.write(`${JSON.stringify({ cliStartup: cliStartupBench(log) }, null, 2)}\n`);
}
