// CPU time spent by the VM's QEMU process and by this Node process over a measurement. On a
// shared, loaded machine wall-clock rates swing with the neighbours; MB per CPU-second of the
// emulator (and of the host process) is what a change to the data path actually moves.
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** QEMU processes started (directly or through a wrapper) by this process. */
export function ourQemuPids(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/comm`, "utf8").startsWith("qemu-system")) continue;
    } catch {
      continue;
    }
    for (let p: number | undefined = Number(entry), hops = 0; p && hops < 6; hops++) {
      p = parentPid(p);
      if (p === process.pid) {
        found.push(Number(entry));
        break;
      }
    }
  }
  return found;
}

/** The QEMU process of the sandbox started last: ours, and not in `known`. */
export function newQemuPid(known: readonly number[]): number | undefined {
  return ourQemuPids().find((pid) => !known.includes(pid));
}

function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

export interface CpuSample {
  wallS: number;
  vmCpuS: number;
  hostCpuS: number;
}

/** Runs `fn` and returns the wall time and the CPU seconds of QEMU (`pid`) and of this process. */
export async function withCpu(pid: number | undefined, fn: () => Promise<unknown>) {
  const vm0 = pid === undefined ? 0 : processCpuSeconds(pid);
  const host0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const host = process.cpuUsage(host0);
  const vmCpuS = pid === undefined ? NaN : processCpuSeconds(pid) - vm0;
  return { wallS, vmCpuS, hostCpuS: (host.user + host.system) / 1e6 } satisfies CpuSample;
}
