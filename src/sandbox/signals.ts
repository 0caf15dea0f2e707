/** Signal names and numbers as the guest uses them (both sides are x86_64 Linux). */
import { constants } from "node:os";

/** Host and guest are both x86_64 Linux, so Node's signal numbers are the guest's. */
export function signalNumber(signal: NodeJS.Signals | number): number {
  if (typeof signal === "number") {
    if (!Number.isInteger(signal) || signal <= 0 || signal > 64) {
      throw new RangeError(`invalid signal number: ${signal}`);
    }
    return signal;
  }
  const n = constants.signals[signal];
  if (n === undefined) throw new RangeError(`unknown signal: ${signal}`);
  return n;
}

export function signalName(signo: number): NodeJS.Signals | undefined {
  for (const [name, n] of Object.entries(constants.signals)) {
    if (n === signo) return name as NodeJS.Signals;
  }
  return undefined;
}
