/**
 * Which FUSE requests a workload sends and how long the host spends on each kind: the
 * measurement that says which requests per file are worth cutting (docs/PERFORMANCE.md,
 * issue 17). Process-wide and off unless a bench turns it on; when off, a request costs one
 * boolean check.
 */
import { LIST_DIR_OPCODE, NOTIFY_LOST_OPCODE, Opcode } from "./fuse-constants.js";

export interface OpcodeStat {
  readonly requests: number;
  /** Time in the server's handler (provider calls included), summed over the requests. */
  readonly hostMs: number;
}

export interface RequestStatsSnapshot {
  readonly requests: number;
  readonly hostMs: number;
  /** Invalidation messages the host sent the guest (fuse-notify.ts). */
  readonly notifications: number;
  /** By opcode name, most requests first. */
  readonly byOpcode: Readonly<Record<string, OpcodeStat>>;
}

/** Keys of requests the guest's relay answered itself (write-behind): counted apart. */
const BEHIND = 2 ** 32;

function opcodeName(opcode: number): string {
  if (opcode >= BEHIND) return `${opcodeName(opcode - BEHIND)}(behind)`;
  if (opcode === NOTIFY_LOST_OPCODE) return "NOTIFY_LOST";
  if (opcode === LIST_DIR_OPCODE) return "LIST_DIR";
  return Opcode[opcode] ?? `OPCODE_${opcode}`;
}

export class FuseRequestStats {
  enabled = false;
  private readonly counts = new Map<number, { requests: number; hostNs: bigint }>();
  private notifications = 0;

  /** The start mark for `record`, or undefined while off. */
  start(): bigint | undefined {
    return this.enabled ? process.hrtime.bigint() : undefined;
  }

  /** `behind`: the request came marked as answered by the guest's relay (write-behind). */
  record(opcode: number, started: bigint | undefined, behind = false): void {
    if (started === undefined) return;
    const took = process.hrtime.bigint() - started;
    const key = behind ? opcode + BEHIND : opcode;
    const entry = this.counts.get(key);
    if (entry === undefined) this.counts.set(key, { requests: 1, hostNs: took });
    else {
      entry.requests++;
      entry.hostNs += took;
    }
  }

  notified(messages: number): void {
    if (this.enabled) this.notifications += messages;
  }

  /** What was counted since the last `take` (or since turned on), and a fresh start. */
  take(): RequestStatsSnapshot {
    const rows = [...this.counts].sort((a, b) => b[1].requests - a[1].requests);
    const byOpcode: Record<string, OpcodeStat> = {};
    let requests = 0;
    let hostNs = 0n;
    for (const [opcode, { requests: n, hostNs: ns }] of rows) {
      byOpcode[opcodeName(opcode)] = { requests: n, hostMs: nsToMs(ns) };
      requests += n;
      hostNs += ns;
    }
    const snapshot = {
      requests,
      hostMs: nsToMs(hostNs),
      notifications: this.notifications,
      byOpcode,
    };
    this.counts.clear();
    this.notifications = 0;
    return snapshot;
  }
}

function nsToMs(ns: bigint): number {
  return Math.round(Number(ns) / 1e4) / 100;
}

/** The one instance every FuseServer in this process reports to. */
export const fuseRequestStats = new FuseRequestStats();
