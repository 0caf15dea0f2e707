/**
 * Coverage feedback from V8's own block coverage (`node:inspector`, Profiler.*PreciseCoverage):
 * no instrumentation step and nothing native to download. Each `take()` returns the blocks run
 * since the previous one (V8 resets the counters), as features: "function F ran and block B in
 * it did / did not", so taking the other branch of an `if` is new coverage too.
 */
import { Session } from "node:inspector";

interface CoverageRange {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface ScriptCoverage {
  url: string;
  functions: { ranges: CoverageRange[] }[];
}

export class BlockCoverage {
  private readonly session = new Session();
  private readonly seen = new Set<string>();
  private readonly scriptIds = new Map<string, number>();

  /** Only scripts whose URL contains `include` count (the project's src/, not Node or tsx). */
  constructor(private readonly include: string) {
    this.session.connect();
    this.post("Profiler.enable");
    this.post("Profiler.startPreciseCoverage", { callCount: false, detailed: true });
  }

  /** Features reached so far. */
  get size(): number {
    return this.seen.size;
  }

  /**
   * Blocks (and functions) that ran at least once: the measure to compare runs by, since the
   * "did not run" features depend on how often coverage was taken.
   */
  get blocksHit(): number {
    let n = 0;
    for (const key of this.seen) if (!key.endsWith(":0")) n++;
    return n;
  }

  /**
   * Features of everything run since the last call that were never seen before; with
   * `commit` false they are only counted, so a batch can be checked and then attributed.
   */
  takeNew(commit = true): number {
    const { result } = this.post<{ result: ScriptCoverage[] }>("Profiler.takePreciseCoverage");
    let fresh = 0;
    for (const script of result) {
      if (!script.url.includes(this.include)) continue;
      const id = this.scriptId(script.url);
      for (const fn of script.functions) {
        const [head, ...blocks] = fn.ranges;
        if (head === undefined || head.count === 0) continue;
        const keys = [`${id}:${head.startOffset}`];
        for (const b of blocks)
          keys.push(`${id}:${b.startOffset}:${b.endOffset}:${b.count > 0 ? 1 : 0}`);
        for (const key of keys) {
          if (this.seen.has(key)) continue;
          if (commit) this.seen.add(key);
          fresh++;
        }
      }
    }
    return fresh;
  }

  /** Forgets what ran since the last take (e.g. target setup), without counting it. */
  discard(): void {
    this.post("Profiler.takePreciseCoverage");
  }

  close(): void {
    this.post("Profiler.stopPreciseCoverage");
    this.session.disconnect();
  }

  private scriptId(url: string): number {
    let id = this.scriptIds.get(url);
    if (id === undefined) {
      id = this.scriptIds.size;
      this.scriptIds.set(url, id);
    }
    return id;
  }

  /** Same-thread inspector sessions answer synchronously; the callback has run on return. */
  private post<T = unknown>(method: string, params: object = {}): T {
    let result: unknown;
    let error: Error | null = null;
    this.session.post(method, params, (err, res) => {
      error = err;
      result = res;
    });
    if (error) throw error;
    return result as T;
  }
}
