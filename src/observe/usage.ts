/**
 * What a sandbox has used so far (`sandbox.usage()`, `inspect`, the final `usage` event), and
 * the budgets that stop it (`maxEgressBytes`, `maxCpuSeconds`) or refuse its requests
 * (`maxRequests`). The meter only adds up what it is told; the sandbox samples the host side
 * (QEMU's CPU time and peak memory) and asks the guest what only it can count.
 */
import type { NetworkEventInfo } from "../net/index.js";

export interface TrafficTotals {
  requests: number;
  /** Body bytes to the upstream. */
  bytesOut: number;
  /** Body bytes from the upstream. */
  bytesIn: number;
}

export interface SandboxUsage {
  /** CPU time the VM used on the host (QEMU's user + system time, all threads), seconds. */
  cpuSeconds: number;
  /** Peak resident memory of the VM on the host (QEMU's high-water mark), bytes. */
  peakMemoryBytes: number;
  /** Bytes the guest wrote to its disks (writable root layer, extra disks), as it counts them. */
  diskWrittenBytes: number;
  /** Bytes written to host-backed mounts, as the host counts them. */
  mountWrittenBytes: number;
  network: {
    /** Bytes through the guest's TCP and UDP flows, both directions (headers, TLS included). */
    bytes: number;
    /** Requests and raw connections the proxy saw (intercept mode), refused ones included. */
    requests: number;
    /**
     * Per destination host (intercept mode); past MAX_USAGE_HOSTS hosts the rest add up
     * under OTHER_HOSTS (the guest picks the names: one entry each would grow without end).
     */
    byHost: Record<string, TrafficTotals>;
    /** Per secret, for the requests its value was substituted into. */
    bySecret: Record<string, TrafficTotals>;
  };
  execs: {
    count: number;
    running: number;
    totalDurationMs: number;
    maxDurationMs: number;
  };
  /** Seconds since the sandbox started. */
  uptimeSeconds: number;
}

/** What the sandbox samples outside the meter. */
export interface HostSample {
  cpuSeconds: number;
  peakMemoryBytes: number;
  diskWrittenBytes: number;
}

export interface Budgets {
  /** Stop the sandbox once its flows moved this many bytes (`network.bytes`). */
  maxEgressBytes?: number;
  /** Stop the sandbox once its VM used this much host CPU time. */
  maxCpuSeconds?: number;
  /** Refuse requests beyond this many (they get a 403, `budget_exceeded`). */
  maxRequests?: number;
}

/** Hosts counted one by one in `network.byHost`. */
export const MAX_USAGE_HOSTS = 1024;
/** The `network.byHost` key the hosts beyond MAX_USAGE_HOSTS add up under. */
export const OTHER_HOSTS = "(other hosts)";

function add(table: Record<string, TrafficTotals>, key: string, e: NetworkEventInfo): void {
  const t = (table[key] ??= { requests: 0, bytesOut: 0, bytesIn: 0 });
  t.requests++;
  t.bytesOut += e.bytesOut;
  t.bytesIn += e.bytesIn;
}

export class UsageMeter {
  private readonly startedAt = Date.now();
  private wireBytes = 0;
  private requests = 0;
  private admitted = 0;
  private mountWritten = 0;
  // No prototype: the guest names the hosts, and `__proto__` is a valid host name.
  private readonly byHost: Record<string, TrafficTotals> = Object.create(null);
  private hosts = 0;
  private readonly bySecret: Record<string, TrafficTotals> = Object.create(null);
  private readonly execs = { count: 0, running: 0, totalDurationMs: 0, maxDurationMs: 0 };

  constructor(readonly budgets: Budgets = {}) {}

  execStarted(): void {
    this.execs.count++;
    this.execs.running++;
  }

  execEnded(durationMs: number): void {
    this.execs.running = Math.max(0, this.execs.running - 1);
    this.execs.totalDurationMs += durationMs;
    this.execs.maxDurationMs = Math.max(this.execs.maxDurationMs, durationMs);
  }

  network(e: NetworkEventInfo): void {
    this.requests++;
    let host = e.host;
    if (!Object.hasOwn(this.byHost, host)) {
      if (this.hosts >= MAX_USAGE_HOSTS) host = OTHER_HOSTS;
      else this.hosts++;
    }
    add(this.byHost, host, e);
    for (const name of e.secrets ?? []) add(this.bySecret, name, e);
  }

  mountWrite(bytes: number): void {
    this.mountWritten += bytes;
  }

  /** Bytes through a guest flow; returns true when that spent the egress budget. */
  flowBytes(bytes: number): boolean {
    this.wireBytes += bytes;
    const max = this.budgets.maxEgressBytes;
    return max !== undefined && this.wireBytes > max;
  }

  /** A request about to go upstream; returns false once the request budget is spent. */
  admitRequest(): boolean {
    const max = this.budgets.maxRequests;
    if (max !== undefined && this.admitted >= max) return false;
    this.admitted++;
    return true;
  }

  get egressBytes(): number {
    return this.wireBytes;
  }

  snapshot(host: HostSample): SandboxUsage {
    const copy = (t: Record<string, TrafficTotals>) =>
      Object.fromEntries(Object.entries(t).map(([k, v]) => [k, { ...v }]));
    return {
      cpuSeconds: Math.round(host.cpuSeconds * 100) / 100,
      peakMemoryBytes: host.peakMemoryBytes,
      diskWrittenBytes: host.diskWrittenBytes,
      mountWrittenBytes: this.mountWritten,
      network: {
        bytes: this.wireBytes,
        requests: this.requests,
        byHost: copy(this.byHost),
        bySecret: copy(this.bySecret),
      },
      execs: { ...this.execs },
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 100) / 10,
    };
  }
}
