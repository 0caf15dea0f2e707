import { readFileSync } from "node:fs";

function statFields(pid: number): string[] | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: fields restart after the last ')'.
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/**
 * Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or undefined when the
 * process is gone. Together with the pid it names one process for the life of the host, so a
 * pid reused after a crash is not mistaken for a live supervisor.
 */
export function processStartTicks(pid: number): number | undefined {
  const rest = statFields(pid);
  const ticks = Number(rest?.[19]);
  return Number.isFinite(ticks) ? ticks : undefined;
}

/**
 * A zombie (killed, not yet reaped by whoever inherited it) still answers kill(pid, 0) but is
 * dead for every purpose here.
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return statFields(pid)?.[0] !== "Z";
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether `pid` is still the very process that started at `startTicks` (0: pid only). */
export function sameProcessAlive(pid: number, startTicks: number): boolean {
  if (!pidAlive(pid)) return false;
  if (startTicks === 0) return true;
  const now = processStartTicks(pid);
  // Zombies and processes of other users may have no readable stat: trust the pid then.
  return now === undefined || now === startTicks;
}

/** The command line of a process, NUL-separated arguments joined by spaces ("" if gone). */
export function processCommandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

/** Linux reports process times in USER_HZ ticks, 100 per second on every architecture. */
const TICKS_PER_SECOND = 100;

/** User plus system CPU time of a process (all its threads), in seconds; undefined if gone. */
export function processCpuSeconds(pid: number): number | undefined {
  const rest = statFields(pid);
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat.
  const ticks = Number(rest?.[11]) + Number(rest?.[12]);
  return Number.isFinite(ticks) ? ticks / TICKS_PER_SECOND : undefined;
}

/** Peak resident memory of a process (VmHWM), in bytes; undefined if gone. */
export function processPeakRssBytes(pid: number): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}
