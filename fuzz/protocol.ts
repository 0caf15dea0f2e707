/** What the supervisor and a fuzz worker tell each other. */
import type { CoverageMode, EngineStats } from "./engine.js";
import type { FindingKind } from "./findings.js";

export interface WorkerJob {
  readonly target: string;
  readonly seed: number;
  readonly deadlineMs: number;
  readonly coverage: CoverageMode;
  /** Committed corpus files for this target (run first), or the one input to replay. */
  readonly inputs: readonly Uint8Array[];
  readonly replay: boolean;
  /** Heap growth over the run that counts as a leak (MiB; default 64). */
  readonly heapGrowthLimitMb?: number;
  /** Send the corpus back at the end (to be saved under fuzz/corpus). */
  readonly returnCorpus: boolean;
  /** Heartbeat and the input being run, for hangs the worker cannot report itself. */
  readonly shared: SharedArrayBuffer;
}

export type WorkerMessage =
  | {
      type: "finding";
      kind: FindingKind;
      message: string;
      stack?: string;
      input: Uint8Array;
    }
  | { type: "done"; stats: EngineStats; corpus?: Uint8Array[] };

/** Layout of `shared`: [execs, input length] as Int32, then the input bytes. */
export const SHARED_HEADER_BYTES = 8;
export const SHARED_INPUT_BYTES = 2 * 1024 * 1024;

export class SharedInput {
  private readonly header: Int32Array;
  private readonly bytes: Uint8Array;

  constructor(readonly buffer = new SharedArrayBuffer(SHARED_HEADER_BYTES + SHARED_INPUT_BYTES)) {
    this.header = new Int32Array(buffer, 0, 2);
    this.bytes = new Uint8Array(buffer, SHARED_HEADER_BYTES);
  }

  /** Worker side: about to run `input`. */
  publish(input: Uint8Array): void {
    const n = Math.min(input.length, this.bytes.length);
    this.bytes.set(input.subarray(0, n));
    Atomics.store(this.header, 1, n);
    Atomics.add(this.header, 0, 1);
  }

  get execs(): number {
    return Atomics.load(this.header, 0);
  }

  /** Supervisor side: the input the worker is running now. */
  current(): Buffer {
    return Buffer.from(this.bytes.subarray(0, Atomics.load(this.header, 1)));
  }
}
