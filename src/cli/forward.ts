/**
 * A command's streams between this terminal and the sandbox, for `run` and `exec` (local or
 * on a node): output forwarded with backpressure, signals proxied, a TTY attached for `-it`,
 * and the status a broken stdout gives.
 */
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import type { ExecProcess } from "../sandbox/index.js";
import type { OutputHold } from "./output-hold.js";
import { exitStatus, onOutputFailed, outputFailed } from "./output.js";
import { attachTerminal } from "./tty.js";

/** An `--approve` question's claim on the terminal (approve-prompt.ts). */
export interface TerminalClaim {
  /** Sees each chunk of keys first; true keeps it from the guest (see attachTerminal). */
  readonly take: (chunk: Buffer) => boolean;
  /** Holds the guest's output while a question is open. */
  readonly output: OutputHold;
}

/**
 * Keeps a destination from being ended when the guest's stream ends (stdout is shared). Once
 * the destination has failed (its reader went away), the rest is dropped rather than waited on.
 * With `hold`, each write waits while it is held: the pipe into this stream then stops at its
 * high-water mark and the guest's output stops behind it.
 */
export function keepOpen(dest: Writable, hold?: OutputHold): Writable {
  const forward = (chunk: Buffer, done: () => void): void => {
    if (dest.destroyed || dest.write(chunk) || dest.destroyed) done();
    else dest.once("drain", () => done());
  };
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      if (hold) hold.pass(() => forward(chunk, done));
      else forward(chunk, done);
    },
  });
}

/**
 * Waits for the command and the forwarding of its output. When our own stdout or stderr fails
 * (`| head -c1`), the command is abandoned, as a local writer would die of SIGPIPE, and the
 * status is output.ts's EXIT_BROKEN_PIPE.
 */
async function forwarded(proc: ExecProcess, outputs: Promise<void>[]): Promise<number> {
  const stop = onOutputFailed(() => proc.abandon());
  try {
    const [exit] = await Promise.all([proc.wait(), ...outputs]);
    return exit.exitCode;
  } catch (err) {
    // Abandoned because our output failed: the status is output.ts's, not the command's.
    if (outputFailed()) return exitStatus(0);
    throw err;
  } finally {
    stop();
  }
}

export async function streamed(
  proc: ExecProcess,
  forwardStdin: boolean,
  /** `--approve` without -it: the guest's output waits while a question is open. */
  hold?: OutputHold,
): Promise<number> {
  if (forwardStdin) process.stdin.pipe(proc.stdin);
  else proc.stdin.end();
  // Ctrl-C and SIGTERM go to the guest command, like `docker run`'s signal proxy; a second
  // Ctrl-C while it is still running ends the sandbox.
  let interrupts = 0;
  const forward = (signal: NodeJS.Signals) => {
    if (signal === "SIGINT" && ++interrupts > 1) proc.abandon();
    else proc.kill(signal);
  };
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  try {
    return await forwarded(proc, [
      pipeline(proc.stdout, keepOpen(process.stdout, hold)),
      pipeline(proc.stderr, keepOpen(process.stderr, hold)),
    ]);
  } finally {
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
    if (forwardStdin) {
      process.stdin.unpipe(proc.stdin);
      process.stdin.pause();
    }
  }
}

export async function interactive(proc: ExecProcess, claim?: TerminalClaim): Promise<number> {
  const restore = attachTerminal(proc, claim?.take);
  try {
    return await forwarded(proc, [pipeline(proc.stdout, keepOpen(process.stdout, claim?.output))]);
  } finally {
    restore();
  }
}
