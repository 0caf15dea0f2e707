import { readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ

/** CPU seconds (user + system) of the calling thread so far (Linux: /proc/thread-self). */
export function threadCpuSeconds(): number {
  const stat = readFileSync("/proc/thread-self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}
