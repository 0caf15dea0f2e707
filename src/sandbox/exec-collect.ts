/**
 * `exec()`: a spawned command driven to completion, output collected, timeout and abort
 * honoured.
 */
import { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { ErrTimeout, WheellockError } from "../errors.js";
import type { ExecExit, ExecProcess } from "./exec-process.js";

export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  user?: string;
  /** Data for the command's stdin; stdin is closed after it (or at once when absent). */
  stdin?: string | Buffer | Uint8Array | Readable | AsyncIterable<Buffer | Uint8Array | string>;
  /** Kill the command (SIGKILL) and reject with ErrTimeout after this long. */
  timeoutMs?: number;
  /** Abort: kill the command and reject with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Output kept per stream (default 64 MiB). Beyond it output is still drained, so the
   * command runs to completion, but dropped, and `stdoutTruncated`/`stderrTruncated` is set.
   */
  maxOutputBytes?: number;
}

export interface ExecResult extends ExecExit {
  stdout: string;
  stderr: string;
  stdoutTruncated?: boolean;
  stderrTruncated?: boolean;
}

const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

class Collector {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly limit: number) {}
  add(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (kept.length < chunk.length) this.truncated = true;
    this.chunks.push(kept);
    this.size += kept.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

async function feedStdin(proc: ExecProcess, stdin: ExecOptions["stdin"]): Promise<void> {
  if (stdin === undefined) {
    proc.stdin.end();
    return;
  }
  const source =
    typeof stdin === "string" || stdin instanceof Uint8Array
      ? Readable.from([Buffer.from(stdin)])
      : Readable.from(stdin);
  source.pipe(proc.stdin);
  await finished(proc.stdin).catch(() => undefined);
}

/** Drives a spawned command to completion, collecting output, honouring timeout and abort. */
export async function runCollected(proc: ExecProcess, options: ExecOptions): Promise<ExecResult> {
  const limit = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const out = new Collector(limit);
  const err = new Collector(limit);
  proc.stdout.on("data", (c: Buffer) => out.add(c));
  proc.stderr.on("data", (c: Buffer) => err.add(c));
  void feedStdin(proc, options.stdin);

  const cleanups: Array<() => void> = [];
  const interrupted = new Promise<never>((_, reject) => {
    if (options.timeoutMs !== undefined) {
      const timer = setTimeout(() => {
        proc.abandon();
        reject(new ErrTimeout(`command timed out after ${options.timeoutMs} ms`));
      }, options.timeoutMs);
      cleanups.push(() => clearTimeout(timer));
    }
    const signal = options.signal;
    if (signal) {
      const onAbort = () => {
        proc.abandon();
        reject(
          signal.reason instanceof Error
            ? signal.reason
            : new WheellockError("ErrExec", "command aborted"),
        );
      };
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener("abort", onAbort, { once: true });
        cleanups.push(() => signal.removeEventListener("abort", onAbort));
      }
    }
  });
  interrupted.catch(() => undefined);
  try {
    const exit = await Promise.race([
      Promise.all([proc.wait(), finished(proc.stdout), finished(proc.stderr)]).then(([e]) => e),
      interrupted,
    ]);
    return {
      ...exit,
      stdout: out.text(),
      stderr: err.text(),
      ...(out.truncated ? { stdoutTruncated: true } : {}),
      ...(err.truncated ? { stderrTruncated: true } : {}),
    };
  } finally {
    for (const fn of cleanups) fn();
  }
}
