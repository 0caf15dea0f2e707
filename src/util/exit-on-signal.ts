/**
 * A sandbox's start with Ctrl-C (SIGINT), SIGTERM and SIGHUP ending the process through
 * `process.exit`, not through the signal's default action. Killed by a signal, Node runs no
 * `exit` listeners, so a start cut there left its run dir (a copy of a checkpoint's private
 * disks: the checkpoint-time content of its volumes) and disk locks for `wheellock gc`;
 * exiting, it runs every ResourceStack's synchronous releases (the run dir removed, the locks
 * let go; QEMU dies with its parent).
 */
import { constants } from "node:os";

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * Runs `start`; a signal before it settles exits the process (128 + the signal's number,
 * as a shell reports a killed process) after `beforeExit` (synchronous: the last thing a
 * process that exits can do, e.g. to record why).
 */
export async function exitOnSignalDuring<T>(
  start: () => Promise<T>,
  beforeExit: (signal: NodeJS.Signals) => void = () => undefined,
): Promise<T> {
  const onSignal = (signal: NodeJS.Signals): void => {
    try {
      beforeExit(signal);
    } finally {
      process.exit(128 + (constants.signals[signal] ?? 0));
    }
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  try {
    return await start();
  } finally {
    for (const signal of SIGNALS) process.off(signal, onSignal);
  }
}
