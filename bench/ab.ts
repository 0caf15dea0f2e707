// A/B of this checkout against another one, in one process and one run, rounds interleaved so
// both see the same machine load (this machine is shared and noisy):
//   node --import tsx bench/ab.ts --against /path/to/other/checkout [--rounds 6]
// Per round and tree: a cold start (create to first exec, no snapshot), a snapshot restore
// (create to first exec), the exec round trip on a warm sandbox (median of 30 `true`), exec
// stdout throughput (64 MiB) and a 32 MiB file write + read. Prints JSON with each tree's
// medians and the ratio this/other (> 1 means this checkout is slower for times, faster
// for throughputs).
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { stdoutThroughputMBps } from "./stdout-throughput.js";

const MB = 1024 * 1024;

interface AnySandbox {
  exec(command: string | string[]): Promise<{ exitCode: number }>;
  writeFile(path: string, data: Buffer): Promise<void>;
  readFile(path: string): Promise<Buffer>;
  close(): Promise<void>;
}
interface AnySdk {
  Sandbox: { create(options: Record<string, unknown>): Promise<AnySandbox> };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function ms<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = process.hrtime.bigint();
  const r = await fn();
  return [Number(process.hrtime.bigint() - t) / 1e6, r];
}

async function startMs(sdk: AnySdk, snapshot: boolean): Promise<number> {
  const [elapsed, sb] = await ms(async () => {
    const sb = await sdk.Sandbox.create({ noNetwork: true, snapshot });
    await sb.exec(["true"]);
    return sb;
  });
  await sb.close();
  return elapsed;
}

async function roundTripMs(sb: AnySandbox): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 30; i++) samples.push((await ms(() => sb.exec(["true"])))[0]);
  return median(samples);
}

async function fileMBps(sb: AnySandbox): Promise<number> {
  const data = Buffer.alloc(32 * MB, 7);
  const [elapsed] = await ms(async () => {
    await sb.writeFile("/tmp/ab.bin", data);
    await sb.readFile("/tmp/ab.bin");
  });
  return (2 * data.length) / MB / (elapsed / 1000);
}

type Metric = "coldStartMs" | "restoreStartMs" | "execRoundTripMs" | "stdoutMBps" | "fileMBps";
const METRICS: Metric[] = [
  "coldStartMs",
  "restoreStartMs",
  "execRoundTripMs",
  "stdoutMBps",
  "fileMBps",
];

const trees = [resolve("."), resolve(arg("--against") ?? ".")];
const rounds = Number(arg("--rounds") ?? 6);
const sdks = await Promise.all(
  trees.map(async (tree) => (await import(pathToFileURL(`${tree}/src/index.ts`).href)) as AnySdk),
);
const samples = trees.map(() => new Map<Metric, number[]>(METRICS.map((m) => [m, []])));
const record = (tree: number, metric: Metric, value: number) =>
  samples[tree]?.get(metric)?.push(Math.round(value * 100) / 100);
// Each tree once before measuring: its agent build, its snapshot, translated code.
for (const sdk of sdks) {
  await startMs(sdk, false);
  await startMs(sdk, true);
}
for (let round = 0; round < rounds; round++) {
  // Alternate which tree goes first, so neither always meets the other's leftovers.
  const order = round % 2 === 0 ? [0, 1] : [1, 0];
  for (const i of order) {
    const sdk = sdks[i] as AnySdk;
    record(i, "coldStartMs", await startMs(sdk, false));
    record(i, "restoreStartMs", await startMs(sdk, true));
    const sb = await sdk.Sandbox.create({ noNetwork: true, snapshot: false });
    try {
      await sb.exec(["true"]);
      record(i, "execRoundTripMs", await roundTripMs(sb));
      record(i, "stdoutMBps", await stdoutThroughputMBps(sb as never, 64 * MB));
      record(i, "fileMBps", await fileMBps(sb));
    } finally {
      await sb.close();
    }
    process.stderr.write(`ab: round ${round + 1}/${rounds} tree ${i} done\n`);
  }
}
const medians = samples.map((m) =>
  Object.fromEntries(METRICS.map((k) => [k, median(m.get(k) ?? [])])),
);
const ratio = Object.fromEntries(
  METRICS.map((k) => [
    k,
    Math.round(((medians[0]?.[k] ?? NaN) / (medians[1]?.[k] ?? NaN)) * 1000) / 1000,
  ]),
);
process.stdout.write(
  `${JSON.stringify(
    {
      rounds,
      trees,
      medians,
      ratioThisOverOther: ratio,
      samples: samples.map((m) => Object.fromEntries(m)),
    },
    null,
    2,
  )}\n`,
);
