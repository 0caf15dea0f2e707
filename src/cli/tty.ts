import type { ExecProcess } from "../sandbox/index.js";

export interface TerminalSize {
  rows: number;
  cols: number;
}

export function hostTerminalSize(): TerminalSize {
  return { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 };
}

/**
 * Connects the host terminal to a guest PTY: raw mode (so Ctrl-C, Ctrl-Z and arrow keys reach
 * the guest as bytes), keystrokes to the guest, window-size changes as resizes. Returns a
 * function that restores the terminal.
 */
export function attachTerminal(
  proc: ExecProcess,
  /** Sees each chunk of keys first; true keeps it from the guest (an open `--approve` question). */
  take?: (chunk: Buffer) => boolean,
): () => void {
  const stdin = process.stdin;
  const wasRaw = stdin.isRaw;
  stdin.setRawMode(true);
  stdin.resume();
  const forward = (chunk: Buffer): void => {
    if (take?.(chunk)) return;
    if (!proc.stdin.write(chunk)) {
      stdin.pause();
      proc.stdin.once("drain", () => stdin.resume());
    }
  };
  if (take) stdin.on("data", forward);
  else stdin.pipe(proc.stdin);
  const onResize = () => {
    const { rows, cols } = hostTerminalSize();
    proc.resize(rows, cols);
  };
  process.stdout.on("resize", onResize);
  return () => {
    process.stdout.off("resize", onResize);
    if (take) stdin.off("data", forward);
    else stdin.unpipe(proc.stdin);
    stdin.setRawMode(wasRaw);
    stdin.pause();
  };
}
