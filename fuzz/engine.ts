/**
 * The fuzz loop for one target in one thread: pick a corpus entry, mutate it, run it, keep it
 * when it reached new code (with coverage on), and report findings — an error escaping the
 * target, a process-level uncaught error or unhandled rejection during the input, an input
 * running past the target's time limit, or the heap growing across bursts of inputs.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { BlockCoverage } from "./coverage.js";
import { describeError, signature, type Finding } from "./findings.js";
import { mutate } from "./mutate.js";
import { Random } from "./random.js";
import type { FuzzTarget } from "./target.js";

export type CoverageMode = "guide" | "measure" | "off";

export interface EngineOptions {
  readonly target: FuzzTarget;
  readonly seed: number;
  /** Stop at this time (Date.now() ms). */
  readonly deadlineMs: number;
  /**
   * V8 block coverage: "guide" keeps inputs that reach new code; "measure" only counts what
   * the run reached (taken once, at the end); "off" runs without it.
   */
  readonly coverage: CoverageMode;
  /** Committed corpus files, run first like seeds. */
  readonly extraInputs: readonly Buffer[];
  /** Called with each input just before it runs (the supervisor's view, for sync hangs). */
  readonly onInput: (input: Buffer) => void;
  /** One call per new unique finding. */
  readonly onFinding: (f: Finding) => void;
  /** Heap growth (after GC) beyond the warm-up level that counts as a leak. */
  readonly heapGrowthLimitBytes?: number;
}

export interface EngineStats {
  execs: number;
  corpus: number;
  features: number;
  /** Blocks of src/ that ran (0 with coverage off). */
  blocksHit: number;
  findings: number;
  /** Every occurrence, not only unique ones. */
  findingHits: number;
}

interface Problem {
  kind: Finding["kind"];
  message: string;
  stack?: string;
}

const STACK_FRAMES = 20;
const BATCH = 64;
const MAX_CORPUS_BYTES = 16 * 1024 * 1024;
const HEAP_CHECK_MS = 1000;
const WARMUP_MS = 1500;

type Gc = () => void;

export class Engine {
  readonly stats: EngineStats = {
    execs: 0,
    corpus: 0,
    features: 0,
    blocksHit: 0,
    findings: 0,
    findingHits: 0,
  };
  private readonly random: Random;
  private readonly corpus: Buffer[] = [];
  private corpusBytes = 0;
  private readonly seen = new Set<string>();
  private processErrors: unknown[] = [];
  private coverage: BlockCoverage | undefined;

  constructor(private readonly opts: EngineOptions) {
    this.random = new Random(opts.seed);
  }

  /** The inputs kept: seeds, committed ones, and those that reached new code. */
  get corpusInputs(): readonly Buffer[] {
    return this.corpus;
  }

  /** Fuzzes until the deadline: the seeds and committed inputs first, then mutations. */
  async run(): Promise<EngineStats> {
    await this.harness(async () => {
      if (this.opts.coverage !== "off") this.coverage = new BlockCoverage("/src/");
      const seeds = [...(await this.opts.target.seeds()), ...this.opts.extraInputs];
      for (const input of seeds) {
        await this.exec(input);
        this.keep(input);
      }
      if (this.opts.coverage === "guide") this.coverage?.takeNew();
      await this.loop();
      if (this.opts.coverage === "measure") this.coverage?.takeNew();
    });
    this.stats.corpus = this.corpus.length;
    this.stats.features = this.coverage?.size ?? 0;
    this.stats.blocksHit = this.coverage?.blocksHit ?? 0;
    return this.stats;
  }

  /** Runs exactly these inputs once each (replaying a crash file or a committed corpus). */
  async replay(inputs: readonly Buffer[]): Promise<EngineStats> {
    await this.harness(async () => {
      for (const input of inputs) await this.exec(input);
    });
    return this.stats;
  }

  private async harness(body: () => Promise<void>): Promise<void> {
    const onProcessError = (err: unknown): void => void this.processErrors.push(err);
    // Node's own leak detector: listeners piling up on one emitter, input after input.
    const onWarning = (w: Error): void => {
      if (w.name === "MaxListenersExceededWarning") this.processErrors.push(w);
    };
    process.on("uncaughtException", onProcessError);
    process.on("unhandledRejection", onProcessError);
    process.on("warning", onWarning);
    const stackFrames = Error.stackTraceLimit;
    try {
      await this.opts.target.setup?.();
      Error.stackTraceLimit = 0;
      await body();
    } finally {
      Error.stackTraceLimit = stackFrames;
      this.coverage?.close();
      await this.opts.target.teardown?.().catch(() => undefined);
      process.off("uncaughtException", onProcessError);
      process.off("unhandledRejection", onProcessError);
      process.off("warning", onWarning);
    }
  }

  private async loop(): Promise<void> {
    const gc = findGc();
    const started = Date.now();
    let baseline: number | undefined;
    let nextHeapCheck = started + WARMUP_MS;
    let leakReported = false;
    const r = this.random;
    while (Date.now() < this.opts.deadlineMs) {
      // Coverage is taken once per batch (a take costs about a millisecond): only a batch that
      // reached new code is run again input by input, to find which inputs to keep.
      const batch: Buffer[] = [];
      for (let i = 0; i < BATCH && Date.now() < this.opts.deadlineMs; i++) {
        const parent =
          this.corpus.length === 0 || r.chance(0.02)
            ? r.bytes(r.size(64))
            : r.chance(0.5)
              ? r.pick(this.corpus.slice(-32))
              : r.pick(this.corpus);
        const child = mutate(parent, { target: this.opts.target, random: r, corpus: this.corpus });
        await this.exec(child);
        batch.push(child);
      }
      if (this.opts.coverage === "guide" && this.coverage && this.coverage.takeNew(false) > 0) {
        for (const input of batch) {
          await this.exec(input);
          if (this.coverage.takeNew() > 0) this.keep(input);
        }
      }
      const now = Date.now();
      if (gc && !leakReported && now >= nextHeapCheck) {
        nextHeapCheck = now + HEAP_CHECK_MS;
        const heap = liveHeapBytes(gc) - this.corpusBytes;
        if (baseline === undefined) baseline = heap;
        else if (heap - baseline > (this.opts.heapGrowthLimitBytes ?? 64 * 1024 * 1024)) {
          leakReported = true;
          const mb = Math.round((heap - baseline) / 1048576);
          this.report(
            "memory",
            `heap grew by ${mb} MiB over the run (after GC)`,
            undefined,
            this.last,
          );
        }
      }
    }
  }

  private last: Buffer = Buffer.alloc(0);

  /** Runs one input and reports what went wrong with it. */
  private async exec(input: Buffer): Promise<void> {
    this.last = input;
    this.opts.onInput(input);
    this.stats.execs++;
    let problems = await this.runOne(input);
    if (problems.some((p) => p.kind !== "hang") && Error.stackTraceLimit === 0) {
      // Stacks are off while fuzzing (capturing them is most of the cost of a parser that
      // throws): run the input again with them on, for the report.
      Error.stackTraceLimit = STACK_FRAMES;
      try {
        const again = await this.runOne(input);
        if (again.length > 0) problems = again;
      } finally {
        Error.stackTraceLimit = 0;
      }
    }
    if (problems.some((p) => p.kind === "hang")) {
      // Time limits are wall time, which a loaded machine stretches by stalling this thread:
      // a hang counts when the input is slow again (a hanging input hangs every time).
      const again = await this.runOne(input);
      if (!again.some((p) => p.kind === "hang"))
        problems = problems.filter((p) => p.kind !== "hang");
    }
    for (const p of problems) this.report(p.kind, p.message, p.stack, input);
  }

  private async runOne(input: Buffer): Promise<Problem[]> {
    const { target } = this.opts;
    const problems: Problem[] = [];
    let timer: NodeJS.Timeout | undefined;
    const started = performance.now();
    try {
      const result = target.run(input);
      if (result instanceof Promise) {
        const timeout = new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), target.timeLimitMs);
        });
        if ((await Promise.race([result, timeout])) === "timeout") {
          result.catch(() => undefined);
          problems.push({
            kind: "hang",
            message: `input still running after ${target.timeLimitMs} ms`,
          });
        }
      }
    } catch (err) {
      problems.push({ kind: "crash", ...describeError(err) });
    } finally {
      clearTimeout(timer);
    }
    // Synchronous work past the limit (a quadratic loop, say) finishes before any timer can
    // fire: measured, it is a hang all the same.
    const tookMs = Math.round(performance.now() - started);
    if (tookMs > target.timeLimitMs && !problems.some((p) => p.kind === "hang"))
      problems.push({
        kind: "hang",
        message: `input took ${tookMs} ms (limit ${target.timeLimitMs} ms)`,
      });
    const stray = this.processErrors;
    this.processErrors = [];
    for (const err of stray) {
      const { message, stack } = describeError(err);
      const leak = err instanceof Error && err.name === "MaxListenersExceededWarning";
      problems.push({
        kind: leak ? "memory" : "crash",
        message: leak ? `listener leak: ${message}` : `uncaught: ${message}`,
        ...(stack ? { stack } : {}),
      });
    }
    return problems;
  }

  private keep(input: Buffer): void {
    if (this.corpusBytes + input.length > MAX_CORPUS_BYTES) return;
    this.corpus.push(input);
    this.corpusBytes += input.length;
  }

  private report(
    kind: Finding["kind"],
    message: string,
    stack: string | undefined,
    input: Buffer,
  ): void {
    this.stats.findingHits++;
    const key = signature({ kind, message, ...(stack ? { stack } : {}) });
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.stats.findings++;
    this.opts.onFinding({
      target: this.opts.target.name,
      kind,
      message,
      ...(stack ? { stack } : {}),
      input: Buffer.from(input),
    });
  }
}

/** `gc()`, from --expose-gc or else by turning the flag on and taking it from a new context. */
function findGc(): Gc | undefined {
  const exposed = (globalThis as { gc?: Gc }).gc;
  if (typeof exposed === "function") return exposed;
  setFlagsFromString("--expose-gc");
  const gc: unknown = runInNewContext("gc");
  return typeof gc === "function" ? (gc as Gc) : undefined;
}

/** JS heap plus Buffers' memory outside it (ArrayBuffer backing stores), after a full GC. */
function liveHeapBytes(gc: Gc): number {
  gc();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}
