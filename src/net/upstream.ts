/**
 * What the stack needs from the outside world. The stack itself never touches host sockets,
 * so unit tests drive it with fakes and policy lives in one place (the Upstream implementation).
 */
import type { SynStamp } from "./syn-stamp.js";

/** Callbacks from a host-side connection into the guest flow that owns it. */
export interface UpstreamTcpEvents {
  onConnect(): void;
  onData(chunk: Buffer): void;
  /** The remote end finished sending (half-close). */
  onEnd(): void;
  /** Buffered writes fell below the high-water mark. */
  onDrain(): void;
  /** The connection is gone: refused, reset, timed out or closed after an error. */
  onError(err: Error): void;
}

export interface UpstreamTcp {
  /** `onFlushed` runs once the chunk left the process (or the connection died). */
  write(chunk: Buffer, onFlushed: () => void): void;
  end(): void;
  destroy(): void;
  pause(): void;
  resume(): void;
}

export interface UpstreamUdp {
  send(payload: Buffer): void;
  close(): void;
}

export interface UpstreamUdpEvents {
  onMessage(payload: Buffer): void;
  onError(err: Error): void;
}

/** A dial refused by policy; the guest sees a reset (TCP) or silence (UDP). */
export interface Denied {
  denied: string;
}

/** Where a flow comes from in the guest (its socket's local port), for attribution. */
export interface FlowSource {
  srcPort: number;
  /** TCP: who connected, as the flow's first SYN said (syn-stamp.ts); absent: not said. */
  stamp?: SynStamp;
}

export interface Upstream {
  /** `dstIp` is the dotted address the guest asked for. */
  connectTcp(
    dstIp: string,
    dstPort: number,
    events: UpstreamTcpEvents,
    from?: FlowSource,
  ): UpstreamTcp | Denied;
  openUdp(
    dstIp: string,
    dstPort: number,
    events: UpstreamUdpEvents,
    from?: FlowSource,
  ): UpstreamUdp | Denied;
  /** IPv4 addresses for a name (guest DNS), or an empty list when it does not resolve. */
  resolveIpv4(name: string): Promise<string[]>;
}

export function isDenied(r: object): r is Denied {
  return "denied" in r;
}
