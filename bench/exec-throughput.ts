// Exec stdout throughput of this checkout, optionally against another one in the same run:
//   node --import tsx bench/exec-throughput.ts [--against /path/to/other/checkout] [--rounds 5]
// One warm sandbox per checkout (each boots its own agent build), samples interleaved so both
// see the same machine load. Prints JSON: MB/s per sample and the medians.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Sandbox } from "../src/index.js";
import { stdoutThroughputMBps } from "./stdout-throughput.js";

const MB = 1024 * 1024;
const SAMPLE_BYTES = 128 * MB;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function stdoutMBps(sb: Sandbox): Promise<number> {
  return Math.round((await stdoutThroughputMBps(sb, SAMPLE_BYTES)) * 10) / 10;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

const trees = [resolve("."), ...(arg("--against") ? [resolve(arg("--against") as string)] : [])];
const rounds = Number(arg("--rounds") ?? 5);
const sandboxes: Sandbox[] = [];
try {
  for (const tree of trees) {
    const sdk = (await import(pathToFileURL(`${tree}/src/index.ts`).href)) as {
      Sandbox: typeof Sandbox;
    };
    const sb = await sdk.Sandbox.create({ noNetwork: true, snapshot: false });
    await stdoutMBps(sb); // warm-up: translated code, page cache
    sandboxes.push(sb);
  }
  const samples: number[][] = trees.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (const [i, sb] of sandboxes.entries()) samples[i]?.push(await stdoutMBps(sb));
  }
  const result = trees.map((tree, i) => ({
    tree,
    stdoutMBps: samples[i],
    medianMBps: median(samples[i] ?? []),
  }));
  process.stdout.write(`${JSON.stringify({ sampleMB: SAMPLE_BYTES / MB, result }, null, 2)}\n`);
} finally {
  await Promise.all(sandboxes.map((sb) => sb.close()));
}
