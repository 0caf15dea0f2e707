import { performance } from "node:perf_hooks";
import type { NetworkBlockCode, NetworkEventInfo } from "./contract.js";

export interface RequestOutcome {
  status?: number;
  blocked?: boolean;
  code?: NetworkBlockCode;
  reason?: string;
}

/** Collects one request's figures and reports them exactly once, however the request ends. */
export class RequestEvent {
  bytesIn = 0;
  bytesOut = 0;
  private done = false;
  private readonly started = performance.now();

  constructor(
    private readonly emit: ((e: NetworkEventInfo) => void) | undefined,
    public where: Pick<NetworkEventInfo, "method" | "url" | "scheme" | "host" | "port">,
  ) {}

  finish(outcome: RequestOutcome): void {
    if (this.done) return;
    this.done = true;
    const event: NetworkEventInfo = {
      ...this.where,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      durationMs: Math.round((performance.now() - this.started) * 10) / 10,
      blocked: outcome.blocked ?? false,
      ...(outcome.status !== undefined ? { status: outcome.status } : {}),
      ...(outcome.reason !== undefined ? { reason: outcome.reason } : {}),
      ...(outcome.code !== undefined ? { code: outcome.code } : {}),
    };
    try {
      this.emit?.(event);
    } catch {
      // A throwing listener must not break the proxy.
    }
  }
}
