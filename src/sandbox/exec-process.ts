/**
 * A command running in the guest: its streams, pid, exit, signals and resize (`spawn()`'s
 * result).
 */
import type { Readable, Writable } from "node:stream";
import type { ExecStream } from "../channel/index.js";
import { signalName, signalNumber } from "./signals.js";

export interface ExecExit {
  /** The exit status, or 128 + N when the process was killed by signal N (as a shell reports it). */
  exitCode: number;
  /** The id that network and file events of this command name (`attribution.execId`). */
  execId: number;
  /** The terminating signal, when there was one. */
  signal?: NodeJS.Signals;
  durationMs: number;
}

export interface OutputChunk {
  stream: "stdout" | "stderr";
  data: Buffer;
}

/**
 * A command running in the guest. Output is available as Node streams (`stdout`, `stderr`) or
 * by async iteration over both in arrival order; use one or the other. Nothing is buffered
 * beyond the protocol window: a reader that stops reading stops the guest process's output.
 */
export class ExecProcess implements AsyncIterable<OutputChunk> {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** The guest pid; rejects if the command could not start (e.g. unknown user). */
  readonly pid: Promise<number>;
  /** The exec's id, as events name it (`attribution.execId`); rejects like `pid`. */
  readonly execId: Promise<number>;
  private readonly exitPromise: Promise<ExecExit>;

  constructor(
    private readonly stream: ExecStream,
    startedAt: number,
    onExit: (exit: ExecExit) => void,
  ) {
    this.stdin = stream.stdin;
    this.stdout = stream.stdout;
    this.stderr = stream.stderr;
    this.pid = stream.started;
    this.pid.catch(() => undefined);
    this.execId = stream.execId;
    this.exitPromise = Promise.all([stream.exit, stream.execId]).then(
      ([{ exitCode, signal }, execId]) => {
        const name = signal > 0 ? signalName(signal) : undefined;
        const exit: ExecExit = {
          exitCode: signal > 0 ? 128 + signal : exitCode,
          execId,
          durationMs: Date.now() - startedAt,
          ...(name ? { signal: name } : {}),
        };
        onExit(exit);
        return exit;
      },
    );
    this.exitPromise.catch(() => undefined);
  }

  /** Resolves when the process has exited and its output has been delivered. */
  wait(): Promise<ExecExit> {
    return this.exitPromise;
  }

  /** Sends a signal to the command's process group. */
  kill(signal: NodeJS.Signals | number = "SIGTERM"): void {
    this.stream.signal(signalNumber(signal));
  }

  /** Changes the terminal size (PTY commands only). */
  resize(rows: number, cols: number): void {
    this.stream.resize(rows, cols);
  }

  /** Abandons the command: the guest kills it and nothing more is delivered. */
  abandon(): void {
    this.stream.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<OutputChunk> {
    yield* mergeOutput(this.stdout, this.stderr);
  }
}

/** Interleaves two readables in arrival order, pausing them while the consumer is busy. */
async function* mergeOutput(stdout: Readable, stderr: Readable): AsyncGenerator<OutputChunk> {
  const queue: OutputChunk[] = [];
  let open = 2;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const attach = (readable: Readable, stream: OutputChunk["stream"]) => {
    if (readable.readableEnded) {
      open--;
      return;
    }
    readable.on("data", (data: Buffer) => {
      queue.push({ stream, data });
      // Hold back the producer while the consumer catches up; credits stop the guest too.
      if (queue.length >= 16) readable.pause();
      wake?.();
    });
    readable.once("end", () => {
      open--;
      wake?.();
    });
    readable.once("error", (err) => {
      failure = err;
      wake?.();
    });
  };
  attach(stdout, "stdout");
  attach(stderr, "stderr");
  for (;;) {
    const chunk = queue.shift();
    if (chunk) {
      if (queue.length < 4) {
        stdout.resume();
        stderr.resume();
      }
      yield chunk;
      continue;
    }
    if (failure) throw failure;
    if (open === 0) return;
    stdout.resume();
    stderr.resume();
    await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
  }
}
