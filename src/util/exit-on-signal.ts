/**
 * A sandbox's start with Ctrl-C (SIGINT), SIGTERM, SIGHUP and Ctrl-\ (SIGQUIT) ending the
 * process through `process.exit`, not through the signal's default action. Killed by a signal, Node runs no
 * `exit` listeners, so a start cut there left its run dir (a copy of a checkpoint's private
 * disks: the checkpoint-time content of its volumes) and disk locks for `wheellock gc`;
 * exiting, it runs every ResourceStack's synchronous releases (the run dir removed, the locks
 * let go; QEMU dies with its parent).
 */
import { constants } from "node:os";

// SIGQUIT too: Ctrl-\ at a terminal is a user stopping the process, and its default action
// (a core dump) skipped the cleanup as SIGINT's did (review rev19b F8).
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const;

/** Exits the process as a shell reports one killed by `signal`, after `beforeExit`. */
function exitFor(signal: NodeJS.Signals, beforeExit: (signal: NodeJS.Signals) => void): never {
  try {
    beforeExit(signal);
  } finally {
    process.exit(128 + (constants.signals[signal] ?? 0));
  }
}

/**
 * What SIGINT, SIGTERM, SIGHUP and SIGQUIT do, for as long as it is installed, switched with
 * `set` without a moment between two handlers: a listener removed and the next one added leaves
 * none for an instant, and a signal then gets its default action (the process dies, no
 * cleanup).
 */
export class SignalHandling {
  private readonly listener = (signal: NodeJS.Signals): void => this.current(signal);

  constructor(private current: (signal: NodeJS.Signals) => void) {
    for (const signal of SIGNALS) process.on(signal, this.listener);
  }

  set(handler: (signal: NodeJS.Signals) => void): void {
    this.current = handler;
  }

  dispose(): void {
    for (const signal of SIGNALS) process.off(signal, this.listener);
  }
}

/** A handler that exits the process (after `beforeExit`), for SignalHandling. */
export function exitOnSignal(
  beforeExit: (signal: NodeJS.Signals) => void = () => undefined,
): (signal: NodeJS.Signals) => void {
  return (signal) => exitFor(signal, beforeExit);
}

/**
 * A handler that exits the process only when nothing else listens for the signal: while a
 * forwarder passes Ctrl-C to the guest command it does nothing; before that forwarder is
 * there and after it is gone (the sandbox is being closed) the process exits with cleanup,
 * where the signal's default action would have killed it with none.
 */
export function exitOnUnhandledSignal(
  beforeExit: (signal: NodeJS.Signals) => void = () => undefined,
): (signal: NodeJS.Signals) => void {
  return (signal) => {
    if (process.listenerCount(signal) > 1) return;
    exitFor(signal, beforeExit);
  };
}

/**
 * Runs `start`; a signal before it settles exits the process (128 + the signal's number,
 * as a shell reports a killed process) after `beforeExit` (synchronous: the last thing a
 * process that exits can do, e.g. to record why).
 */
export async function exitOnSignalDuring<T>(
  start: () => Promise<T>,
  beforeExit: (signal: NodeJS.Signals) => void = () => undefined,
): Promise<T> {
  const handling = new SignalHandling(exitOnSignal(beforeExit));
  try {
    return await start();
  } finally {
    handling.dispose();
  }
}
