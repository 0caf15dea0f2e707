// Timing in tests that must hold on a loaded CI machine (2 cores shared with TCG guests, load
// averages of 25 seen): a process there can wait seconds for a core, so wall-clock limits of a
// few hundred milliseconds measure the machine, not the code under test.

/**
 * How long a test lets something take that must happen without waiting on anything slow (a
 * timeout of tens of milliseconds firing, a session ending without waiting for a hung peer).
 * The failure such a bound catches is a wait of its own or a hang, not a slow machine.
 */
export const PROMPTLY_MS = 10_000;

/** CPU time (user + system, all threads of this process) spent since `since`, in ms. */
export function cpuMsSince(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}
