// Exec stdout and file transfer against the raw virtio-serial ceiling, in interleaved rounds:
// each round measures the raw port, exec stdout, a file write and a file read back to back, so
// all four see the same machine load, and the ratios are taken per round (then the median).
//   node --import tsx bench/channel-throughput.ts [--rounds 5] [--mb 64]   (JSON on stdout)
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Socket } from "node:net";
import { Sandbox } from "../src/index.js";
import { newQemuPid, ourQemuPids, withCpu } from "./cpu-meter.js";
import { listenRawPort, rawSerialMBps } from "./raw-serial.js";
import { stdoutThroughputMBps } from "./stdout-throughput.js";

const MB = 1024 * 1024;

export interface ChannelRound {
  rawSerialMBps: number;
  stdoutMBps: number;
  fileWriteMBps: number;
  fileReadMBps: number;
  /** The same transfers per CPU-second of the VM's QEMU process (see cpu-meter.ts). */
  rawSerialMBPerVmCpuS: number;
  stdoutMBPerVmCpuS: number;
  fileWriteMBPerVmCpuS: number;
  fileReadMBPerVmCpuS: number;
  /** Host (this process) CPU-seconds per GB moved, stdout and file read. */
  stdoutHostCpuSPerGB: number;
  fileReadHostCpuSPerGB: number;
}

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
};
const round2 = (n: number): number => Math.round(n * 100) / 100;

/**
 * `rounds` interleaved rounds of raw port, stdout, file write and file read, `bytes` each.
 * `qemuPid` (optional) adds the per-CPU-second figures.
 */
export async function channelRounds(
  sb: Sandbox,
  rawPort: Promise<Socket>,
  rounds: number,
  bytes: number,
  qemuPid: number | undefined,
  log: (msg: string) => void = () => undefined,
): Promise<ChannelRound[]> {
  const data = randomBytes(bytes);
  const mb = bytes / MB;
  const out: ChannelRound[] = [];
  // Warm-up: translated code and page cache, so round 1 is not an outlier.
  await stdoutThroughputMBps(sb, 16 * MB);
  for (let r = 0; r < rounds; r++) {
    let rawSerial = 0;
    let stdout = 0;
    const raw = await withCpu(qemuPid, async () => {
      rawSerial = await rawSerialMBps(sb, rawPort, bytes);
    });
    const std = await withCpu(qemuPid, async () => {
      stdout = await stdoutThroughputMBps(sb, bytes);
    });
    const write = await withCpu(qemuPid, () => sb.writeFile("/tmp/bench.bin", data));
    let back: Buffer | undefined;
    const read = await withCpu(qemuPid, async () => {
      back = await sb.readFile("/tmp/bench.bin");
    });
    if (!back?.equals(data)) throw new Error("file read back differs");
    await sb.exec(["rm", "-f", "/tmp/bench.bin"]);
    const row: ChannelRound = {
      rawSerialMBps: round2(rawSerial),
      stdoutMBps: round2(stdout),
      fileWriteMBps: round2(mb / write.wallS),
      fileReadMBps: round2(mb / read.wallS),
      rawSerialMBPerVmCpuS: round2(mb / raw.vmCpuS),
      stdoutMBPerVmCpuS: round2(mb / std.vmCpuS),
      fileWriteMBPerVmCpuS: round2(mb / write.vmCpuS),
      fileReadMBPerVmCpuS: round2(mb / read.vmCpuS),
      stdoutHostCpuSPerGB: round2((std.hostCpuS / mb) * 1024),
      fileReadHostCpuSPerGB: round2((read.hostCpuS / mb) * 1024),
    };
    log(`round ${r + 1}: ${JSON.stringify(row)}`);
    out.push(row);
  }
  return out;
}

/** Medians of the values and of the per-round ratios against the raw port. */
export function summarizeChannel(rounds: ChannelRound[]) {
  const col = (k: keyof ChannelRound) => round2(median(rounds.map((r) => r[k])));
  const ratio = (k: keyof ChannelRound, base: keyof ChannelRound) =>
    round2(median(rounds.map((r) => r[k] / r[base])));
  return {
    rounds: rounds.length,
    baselineRawSerialMBps: col("rawSerialMBps"),
    stdoutMBps: col("stdoutMBps"),
    fileWriteMBps: col("fileWriteMBps"),
    fileReadMBps: col("fileReadMBps"),
    ratioStdoutVsRaw: ratio("stdoutMBps", "rawSerialMBps"),
    ratioFileWriteVsRaw: ratio("fileWriteMBps", "rawSerialMBps"),
    ratioFileReadVsRaw: ratio("fileReadMBps", "rawSerialMBps"),
    perVmCpuSecond: {
      rawSerialMB: col("rawSerialMBPerVmCpuS"),
      ratioStdoutVsRaw: ratio("stdoutMBPerVmCpuS", "rawSerialMBPerVmCpuS"),
      ratioFileWriteVsRaw: ratio("fileWriteMBPerVmCpuS", "rawSerialMBPerVmCpuS"),
      ratioFileReadVsRaw: ratio("fileReadMBPerVmCpuS", "rawSerialMBPerVmCpuS"),
    },
    hostCpuSPerGB: { stdout: col("stdoutHostCpuSPerGB"), fileRead: col("fileReadHostCpuSPerGB") },
    perRound: rounds,
  };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** One warm sandbox with a raw port, from the checkout at `tree` (its own agent build). */
async function openTree(tree: string, dir: string) {
  const sdk = (await import(pathToFileURL(join(tree, "src/index.ts")).href)) as {
    Sandbox: typeof Sandbox;
  };
  const raw = await listenRawPort(mkdtempSync(join(dir, "t-")));
  const before = ourQemuPids();
  const sb = await sdk.Sandbox.create({ noNetwork: true }, { rawPorts: [raw.port] });
  return { tree, sb, raw, qemuPid: newQemuPid(before) };
}

// With --against OTHER_CHECKOUT, both trees' sandboxes run side by side and the rounds
// alternate between them (A/B in one process, same load).
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const log = (msg: string) => process.stderr.write(`channel: ${msg}\n`);
  const dir = mkdtempSync(join(tmpdir(), "wl-bench-ch-"));
  const trees = [resolve("."), ...(arg("--against") ? [resolve(arg("--against") as string)] : [])];
  const opened: Awaited<ReturnType<typeof openTree>>[] = [];
  try {
    for (const tree of trees) opened.push(await openTree(tree, dir));
    const rounds = Number(arg("--rounds") ?? 5);
    const bytes = Number(arg("--mb") ?? 64) * MB;
    const results: ChannelRound[][] = trees.map(() => []);
    for (let r = 0; r < rounds; r++) {
      for (const [i, t] of opened.entries()) {
        const [row] = await channelRounds(t.sb, t.raw.connection, 1, bytes, t.qemuPid, (m) =>
          log(`${t.tree}: ${m}`),
        );
        if (row) results[i]?.push(row);
      }
    }
    const summary = opened.map((t, i) => ({ tree: t.tree, ...summarizeChannel(results[i] ?? []) }));
    process.stdout.write(
      `${JSON.stringify(summary.length === 1 ? summary[0] : summary, null, 2)}\n`,
    );
  } finally {
    for (const t of opened) {
      await t.sb.close();
      t.raw.close();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
