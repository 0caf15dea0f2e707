/**
 * When the reader of the CLI's output goes away (`wheellock run -- yes | head -c1`), the CLI
 * behaves like any Unix writer: it stops writing, abandons the command whose output it was
 * forwarding (closing a `run` sandbox as usual), and ends with status 141 = 128 + SIGPIPE,
 * what a shell reports for `yes` in the same place. Node ignores SIGPIPE, so a write to a
 * closed pipe is an EPIPE error event instead, which crashes the process with a stack trace
 * when nobody listens for it.
 */
import { constants } from "node:os";

export const EXIT_BROKEN_PIPE = 128 + constants.signals.SIGPIPE;

let failedStatus: number | undefined;
let stdoutReleased = false;
const subscribers = new Set<() => void>();

function onWriteError(stream: NodeJS.WriteStream, err: NodeJS.ErrnoException): void {
  if (stream === process.stdout && stdoutReleased) return;
  if (failedStatus !== undefined) return;
  if (err.code === "EPIPE") {
    failedStatus = EXIT_BROKEN_PIPE;
  } else {
    // A full disk or a lost terminal: also nowhere to write, but not the quiet case.
    failedStatus = 1;
    const name = stream === process.stdout ? "stdout" : "stderr";
    if (stream !== process.stderr) process.stderr.write(`wheellock: ${name}: ${err.message}\n`);
  }
  process.exitCode = failedStatus;
  for (const fn of subscribers) fn();
  subscribers.clear();
}

/** Listens for write errors on stdout and stderr; main.ts calls it before anything is written. */
export function watchOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (err: NodeJS.ErrnoException) => onWriteError(stream, err));
  }
}

/** True once stdout or stderr can no longer be written. */
export function outputFailed(): boolean {
  return failedStatus !== undefined;
}

/** Calls `fn` once when output fails (at once if it already has); returns the unsubscriber. */
export function onOutputFailed(fn: () => void): () => void {
  if (failedStatus !== undefined) {
    queueMicrotask(fn);
    return () => undefined;
  }
  subscribers.add(fn);
  return () => subscribers.delete(fn);
}

/** The process's exit status: the command's, unless its output could not be written. */
export function exitStatus(commandStatus: number): number {
  return failedStatus ?? commandStatus;
}

/**
 * The reader of stdout is done with it by design (the `run -d` that started a supervisor):
 * a broken pipe there is expected and changes nothing.
 */
export function releaseStdout(): void {
  stdoutReleased = true;
}
