/**
 * Runs one target in a worker thread and watches it from outside: a synchronous hang (no new
 * input for longer than the time limit) or a worker killed by its heap limit can only be seen
 * from another thread, which then takes the input being run from shared memory, reports it,
 * and starts a fresh worker for the rest of the target's time.
 */
import { Worker } from "node:worker_threads";
import type { CoverageMode, EngineStats } from "./engine.js";
import { signature, type Finding } from "./findings.js";
import { SharedInput, type WorkerJob, type WorkerMessage } from "./protocol.js";

export interface TargetRun {
  readonly target: string;
  readonly seed: number;
  readonly timeMs: number;
  readonly coverage: CoverageMode;
  readonly inputs: readonly Buffer[];
  /** Run `inputs` once each instead of fuzzing. */
  readonly replay: boolean;
  /** Longest an input may run before the worker is declared hung (default 15 s). */
  readonly hangMs?: number;
  readonly onFinding: (f: Finding) => void;
  /** Pass what the target prints through to stderr. */
  readonly verbose?: boolean;
  /** Heap growth over the run that counts as a leak (MiB; default 64). */
  readonly heapGrowthLimitMb?: number;
  /** Heap limit of the worker (MiB): an input that needs more is an "oom" finding. */
  readonly heapMb?: number;
  /** Receives the final corpus (seeds, committed inputs, inputs that reached new code). */
  readonly onCorpus?: (inputs: Buffer[]) => void;
  /** Ends the run before its time (the worker is stopped; what it reported stands). */
  readonly signal?: AbortSignal;
}

export interface TargetResult {
  readonly target: string;
  readonly stats: EngineStats;
  readonly restarts: number;
  readonly wallMs: number;
}

const DEFAULT_HEAP_MB = 1024;
/** Setup (servers, CAs) plus the last input after the deadline, before the worker is killed. */
const GRACE_MS = 30_000;
const WATCH_MS = 100;
const RSS_GROWTH_LIMIT_BYTES = 2 * 2 ** 30;

export async function superviseTarget(run: TargetRun): Promise<TargetResult> {
  const started = Date.now();
  const deadlineMs = started + run.timeMs;
  const total: EngineStats = {
    execs: 0,
    corpus: 0,
    features: 0,
    blocksHit: 0,
    findings: 0,
    findingHits: 0,
  };
  const seen = new Set<string>();
  const report = (f: Finding): void => {
    total.findingHits++;
    const key = signature(f);
    if (seen.has(key)) return;
    seen.add(key);
    total.findings++;
    run.onFinding(f);
  };
  let restarts = 0;
  for (;;) {
    const outcome = await runWorker(run, run.seed + restarts * 7919, deadlineMs, report);
    total.execs += outcome.execs;
    if (outcome.stats) {
      total.corpus = Math.max(total.corpus, outcome.stats.corpus);
      total.features = Math.max(total.features, outcome.stats.features);
      total.blocksHit = Math.max(total.blocksHit, outcome.stats.blocksHit);
    }
    // A replay runs its inputs once; a worker that finished its time is done too.
    if (outcome.stats || run.replay || run.signal?.aborted || Date.now() >= deadlineMs - 500) break;
    restarts++;
  }
  return { target: run.target, stats: total, restarts, wallMs: Date.now() - started };
}

interface WorkerOutcome {
  stats?: EngineStats;
  execs: number;
}

function runWorker(
  run: TargetRun,
  seed: number,
  deadlineMs: number,
  report: (f: Finding) => void,
): Promise<WorkerOutcome> {
  const shared = new SharedInput();
  const heapMb = run.heapMb ?? DEFAULT_HEAP_MB;
  const job: WorkerJob = {
    target: run.target,
    seed,
    deadlineMs,
    coverage: run.coverage,
    inputs: run.inputs,
    replay: run.replay,
    returnCorpus: run.onCorpus !== undefined,
    ...(run.heapGrowthLimitMb !== undefined ? { heapGrowthLimitMb: run.heapGrowthLimitMb } : {}),
    shared: shared.buffer,
  };
  const worker = new Worker(new URL("./worker-boot.mjs", import.meta.url), {
    workerData: job,
    // Node rejects process-wide V8 flags in a worker's execArgv; they apply to it anyway.
    execArgv: process.execArgv.filter((a) => a !== "--expose-gc"),
    resourceLimits: { maxOldGenerationSizeMb: heapMb },
    stdout: true,
    stderr: true,
  });
  // stdout carries only the JSON summary: what targets print goes to stderr, when asked for.
  for (const out of [worker.stdout, worker.stderr]) {
    if (run.verbose) out.pipe(process.stderr, { end: false });
    else out.resume();
  }
  // Generous by default: a loaded machine can stall a worker for seconds, and this watch
  // reports at once (the targets' own per-input limits, confirmed by a second run, are tighter).
  const hangMs = run.hangMs ?? 15_000;
  const target = run.target;
  return new Promise((resolve) => {
    let stats: EngineStats | undefined;
    let settled = false;
    let lastExecs = 0;
    let lastProgress = Date.now();
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearInterval(watch);
      run.signal?.removeEventListener("abort", stop);
      resolve({ ...(stats ? { stats } : {}), execs: stats?.execs ?? shared.execs });
    };
    const stop = (): void => {
      clearInterval(watch);
      void worker.terminate().then(finish);
    };
    if (run.signal?.aborted) queueMicrotask(stop);
    else run.signal?.addEventListener("abort", stop, { once: true });
    const rssLimit = process.memoryUsage.rss() + RSS_GROWTH_LIMIT_BYTES;
    const kill = (kind: Finding["kind"], message: string): void => {
      clearInterval(watch);
      report({ target, kind, message, input: shared.current() });
      void worker.terminate().then(finish);
    };
    const watch = setInterval(() => {
      const execs = shared.execs;
      const now = Date.now();
      // Buffers live outside the worker's heap limit: watch the process as a whole too.
      if (process.memoryUsage.rss() > rssLimit)
        return kill("oom", `process memory grew by over ${RSS_GROWTH_LIMIT_BYTES / 2 ** 30} GiB`);
      if (execs !== lastExecs) {
        lastExecs = execs;
        lastProgress = now;
        return;
      }
      const stuckMs = now - lastProgress;
      if (execs > 0 && stuckMs > hangMs)
        return kill(
          "hang",
          `no progress for ${stuckMs} ms: the input never returned (synchronous hang)`,
        );
      if (now > deadlineMs + GRACE_MS) kill("hang", "worker did not finish after its deadline");
    }, WATCH_MS);
    worker.on("message", (m: WorkerMessage) => {
      if (m.type === "done") {
        stats = m.stats;
        if (m.corpus) run.onCorpus?.(m.corpus.map((i) => Buffer.from(i)));
      } else
        report({
          target,
          kind: m.kind,
          message: m.message,
          ...(m.stack ? { stack: m.stack } : {}),
          input: Buffer.from(m.input),
        });
    });
    worker.on("error", (err: Error & { code?: string }) => {
      const oom = err.code === "ERR_WORKER_OUT_OF_MEMORY";
      report({
        target,
        kind: oom ? "oom" : "crash",
        message: oom
          ? `worker ran out of its ${heapMb} MiB heap on this input`
          : `worker died: ${err.message}`,
        ...(err.stack && !oom ? { stack: err.stack } : {}),
        input: shared.current(),
      });
    });
    worker.on("exit", (code) => {
      if (stats === undefined && code !== 1 && !settled)
        report({
          target,
          kind: "crash",
          message: `worker exited with code ${code} (process.exit from the target?)`,
          input: shared.current(),
        });
      finish();
    });
  });
}
