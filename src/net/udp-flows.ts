import type { Upstream, UpstreamUdp } from "./upstream.js";
import { isDenied } from "./upstream.js";

export interface UdpFlowLimits {
  maxFlows: number;
  idleTimeoutMs: number;
}

export const DEFAULT_UDP_LIMITS: UdpFlowLimits = { maxFlows: 256, idleTimeoutMs: 60_000 };

interface Flow {
  socket: UpstreamUdp;
  idleTimer: NodeJS.Timeout;
}

/**
 * Guest UDP "connections" (guest port + destination) relayed through one host socket each, so
 * replies find their way back. Bounded in number and closed when idle.
 */
export class UdpFlows {
  private readonly flows = new Map<string, Flow>();
  denied = 0;

  constructor(
    private readonly upstream: Upstream,
    private readonly limits: UdpFlowLimits,
    /** Delivers a reply from `dst` to the guest's port. */
    private readonly deliver: (
      dstIp: number,
      dstPort: number,
      guestPort: number,
      payload: Buffer,
    ) => void,
  ) {}

  get size(): number {
    return this.flows.size;
  }

  send(guestPort: number, dstIp: number, dialIp: string, dstPort: number, payload: Buffer): void {
    const key = `${guestPort}|${dstIp}|${dstPort}`;
    let flow = this.flows.get(key);
    if (!flow) {
      if (this.flows.size >= this.limits.maxFlows) return;
      const socket = this.upstream.openUdp(
        dialIp,
        dstPort,
        {
          onMessage: (reply) => {
            const f = this.flows.get(key);
            if (f) f.idleTimer.refresh();
            this.deliver(dstIp, dstPort, guestPort, reply);
          },
          onError: () => this.drop(key),
        },
        { srcPort: guestPort },
      );
      if (isDenied(socket)) {
        this.denied++;
        return;
      }
      const idleTimer = setTimeout(() => this.drop(key), this.limits.idleTimeoutMs);
      idleTimer.unref();
      flow = { socket, idleTimer };
      this.flows.set(key, flow);
    } else {
      flow.idleTimer.refresh();
    }
    flow.socket.send(payload);
  }

  private drop(key: string): void {
    const flow = this.flows.get(key);
    if (!flow) return;
    this.flows.delete(key);
    clearTimeout(flow.idleTimer);
    flow.socket.close();
  }

  close(): void {
    for (const key of [...this.flows.keys()]) this.drop(key);
  }
}
