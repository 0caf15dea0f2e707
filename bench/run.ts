// `npm run bench`: start, exec and I/O figures with their same-run baselines, as JSON on
// stdout (progress on stderr). Numbers, not pass/fail: see docs/PERFORMANCE.md.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Sandbox } from "../src/index.js";
import { prepareAssets } from "../src/setup/index.js";
import { detectAccel } from "../src/vmm/index.js";
import { restoreBench } from "./restore.js";
import { startRounds, type StartRound } from "./starts.js";
import { cliStartupBench } from "./cli-startup.js";
import { forkBench } from "./fork.js";
import { imageBench } from "./image.js";
import { interceptBench } from "./intercept.js";
import { interceptLatencyBench } from "./intercept-latency.js";
import { kernelComparison } from "./kernels.js";
import { channelRounds, summarizeChannel } from "./channel-throughput.js";
import { newQemuPid, ourQemuPids } from "./cpu-meter.js";
import { mountMetadataBench } from "./mount-metadata.js";
import { networkBench } from "./network.js";
import { listenRawPort } from "./raw-serial.js";

const MB = 1024 * 1024;
const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  return {
    min: round(s[0] ?? NaN),
    p50: round(percentile(s, 50)),
    p99: round(percentile(s, 99)),
    max: round(s[s.length - 1] ?? NaN),
    n: s.length,
  };
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function median(samples: number[]): number {
  return stats(samples).p50;
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = process.hrtime.bigint();
  const r = await fn();
  return [Number(process.hrtime.bigint() - t) / 1e6, r];
}

/** The whole CLI process: `wheellock run -- true`, as a user types it. */
function cliRunTrueMs(): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(
    process.execPath,
    ["dist/cli/main.cjs", "run", "--no-snapshot", "--", "true"],
    {
      stdio: "inherit",
    },
  );
  if (r.status !== 0) throw new Error(`wheellock run -- true exited ${r.status}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/**
 * A second baseline: `dd | cat` entirely inside the guest. Command output must cross a pipe
 * before the agent sees it, and under TCG the pipe alone is slower than the raw port.
 */
async function guestPipeMBps(sb: Sandbox, bytes: number): Promise<number> {
  const r = await sb.exec(
    `a=$(date +%s%N); dd if=/dev/zero bs=65536 count=${bytes / 65536} 2>/dev/null | cat >/dev/null; ` +
      "b=$(date +%s%N); echo $((b-a))",
  );
  const ns = Number(r.stdout.trim());
  if (!Number.isFinite(ns) || ns <= 0)
    throw new Error(`guest pipe baseline failed: ${r.stdout} ${r.stderr}`);
  return bytes / MB / (ns / 1e9);
}

async function main(): Promise<void> {
  // First, while nothing else of the bench runs: whole-process figures are the noisiest.
  const cliStartup = cliStartupBench(log);
  // 16 copies of a 512 MB VM on a 2-core TCG machine: run with WHEELLOCK_BENCH_FORKS=1,4,16.
  const fork = await forkBench(
    (process.env.WHEELLOCK_BENCH_FORKS ?? "1,4").split(",").map(Number),
    log,
  );
  const assets = await prepareAssets();
  const accel = detectAccel("auto");
  log(`accelerator ${accel.accel} (${accel.reason})`);

  log("cold start: `wheellock run --no-snapshot -- true` (3 runs)");
  const cli: number[] = [];
  for (let i = 0; i < 3; i++) cli.push(cliRunTrueMs());

  log("starts, interleaved: bare boot, cold, snapshot restore, pool acquire (5 rounds)");
  const rounds = await startRounds(
    accel.accel,
    { kernelPath: assets.kernel.vmlinuzPath, imagePath: assets.image.ext4Path },
    5,
    log,
  );
  const col = (k: keyof StartRound) => rounds.map((r) => r[k]);
  const perRound = (f: (r: StartRound) => number) => stats(rounds.map(f));
  const bare = col("bareBootMs");
  const sdk = col("coldMs");

  log("warm VM: round trips, throughput, files");
  const dir = mkdtempSync(join(tmpdir(), "wl-bench-"));
  const rawPort = await listenRawPort(dir);
  const qemusBefore = ourQemuPids();
  const sb = await Sandbox.create({}, { rawPorts: [rawPort.port] });
  const qemuPid = newQemuPid(qemusBefore);
  try {
    const ping: number[] = [];
    for (let i = 0; i < 300; i++) ping.push((await timed(() => sb.files.ping()))[0]);
    const execRtt: number[] = [];
    for (let i = 0; i < 100; i++) execRtt.push((await timed(() => sb.exec(["true"])))[0]);
    // Baseline: what one fork+exec of /bin/true costs inside this guest, from a shell loop.
    const loops = 100;
    const [loopMs] = await timed(() =>
      sb.exec(`i=0; while [ $i -lt ${loops} ]; do /bin/true; i=$((i+1)); done`),
    );
    const [emptyLoopMs] = await timed(() =>
      sb.exec(`i=0; while [ $i -lt ${loops} ]; do :; i=$((i+1)); done`),
    );
    const guestForkExecMs = (loopMs - emptyLoopMs) / loops;

    // Exec stdout, file write and file read against the raw port, interleaved per round so
    // each ratio compares transfers that saw the same load (bench/channel-throughput.ts).
    const transferBytes = 64 * MB;
    const channel = summarizeChannel(
      await channelRounds(sb, rawPort.connection, 3, transferBytes, qemuPid, log),
    );
    const pipe = await guestPipeMBps(sb, transferBytes);

    const result = {
      accel: accel.accel,
      accelReason: accel.reason,
      kernel: assets.kernel.version,
      coldStart: {
        cliRunTrueMs: stats(cli),
        sdkCreateToFirstExecMs: stats(sdk),
        baselineBareBootMs: stats(bare),
        ratioCliVsBaseline: round(median(cli) / median(bare)),
        ratioSdkVsBaseline: perRound((r) => r.coldMs / r.bareBootMs),
      },
      snapshotStart: {
        sdkCreateToFirstExecMs: stats(col("restoreMs")),
        qemuSpawnToAgentReadyMs: stats(col("restoreBootMs")),
        speedupVsColdStart: perRound((r) => r.coldMs / r.restoreMs),
        speedupVsBareBoot: perRound((r) => r.bareBootMs / r.restoreMs),
      },
      poolAcquire: {
        acquireMs: stats(col("poolAcquireMs")),
        acquireToFirstExecMs: stats(col("poolAcquireToFirstExecMs")),
        speedupVsColdStart: perRound((r) => r.coldMs / r.poolAcquireToFirstExecMs),
      },
      warm: {
        agentPingMs: stats(ping),
        execTrueMs: stats(execRtt),
        baselineGuestForkExecTrueMs: round(guestForkExecMs),
        ratioExecVsGuestForkExec: round(median(execRtt) / guestForkExecMs),
      },
      throughput: {
        ...channel,
        baselineGuestPipeMBps: round(pipe),
        ratioStdoutVsGuestPipe: round(channel.stdoutMBps / pipe),
      },
    };
    // A separate section: pull/unpack throughput and first vs cached image start.
    const image = await imageBench(log);
    const restore = await restoreBench(8, log);
    const kernels = await kernelComparison(accel.accel, log);
    const intercept = await interceptBench(log);
    const interceptLatency = await interceptLatencyBench(30, log);
    // Open-mode download/upload through the userspace stack vs curl on the host's loopback.
    const network = await networkBench(log);
    const mountMetadata = await mountMetadataBench(log);
    process.stdout.write(
      `${JSON.stringify({ ...result, cliStartup, image, restore, fork, kernels, intercept, interceptLatency, network, mountMetadata }, null, 2)}\n`,
    );
  } finally {
    await sb.close();
    rawPort.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
