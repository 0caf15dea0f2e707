import { performance } from "node:perf_hooks";
import type { NetworkBlockCode, NetworkEventInfo } from "./contract.js";
import { requestUrl, type ConnectionInfo } from "./admission.js";
import { afterOrigin, type FlowOrigin } from "./flow-origin.js";

export interface RequestOutcome {
  status?: number;
  blocked?: boolean;
  code?: NetworkBlockCode;
  reason?: string;
}

type Where = Pick<NetworkEventInfo, "method" | "url" | "scheme" | "host" | "port">;
type Notes = Pick<NetworkEventInfo, "secrets" | "approval" | "audit">;

/** Hands out request ids (one sequence per proxy) and reports finished requests. */
export class RequestEvents {
  private nextId = 1;
  /** Started, not yet reported. */
  private readonly open = new Set<RequestEvent>();

  constructor(readonly emit: ((e: NetworkEventInfo) => void) | undefined) {}

  start(where: Where, origin?: FlowOrigin): RequestEvent {
    const event = new RequestEvent(
      (e) => {
        this.open.delete(event);
        this.emit?.(e);
      },
      where,
      this.nextId++,
      origin,
    );
    this.open.add(event);
    return event;
  }

  /**
   * Reports every request still in flight with `outcome` (the sandbox is stopping, e.g. on a
   * spent budget): the final accounting must count what was moving when it stopped.
   */
  finishOpen(outcome: RequestOutcome): void {
    for (const event of [...this.open]) event.finish(outcome);
  }

  /**
   * One refused event for a connection the proxy gave up on before any request (the guest
   * broke HTTP/1, HTTP/2 or TLS): status 400, as HTTP/1.1 answers the same failures.
   */
  connectionRefused(conn: ConnectionInfo, reason: string): void {
    this.start(
      {
        method: "",
        url: requestUrl(conn.scheme, conn.name, conn.port, "/"),
        scheme: conn.scheme,
        host: conn.name,
        port: conn.port,
      },
      conn.origin,
    ).finish({ status: 400, blocked: true, code: "invalid_request", reason });
  }
}

/**
 * Collects one request's figures and reports them exactly once, however the request ends,
 * with who made it once that is known.
 */
export class RequestEvent {
  bytesIn = 0;
  bytesOut = 0;
  notes: Notes = {};
  private done = false;
  private readonly started = performance.now();

  constructor(
    private readonly emit: ((e: NetworkEventInfo) => void) | undefined,
    public where: Where,
    readonly id: number,
    readonly origin?: FlowOrigin,
  ) {}

  finish(outcome: RequestOutcome): void {
    if (this.done) return;
    this.done = true;
    const fields = {
      ...this.where,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      durationMs: Math.round((performance.now() - this.started) * 10) / 10,
      blocked: outcome.blocked ?? false,
      ...(outcome.status !== undefined ? { status: outcome.status } : {}),
      ...(outcome.reason !== undefined ? { reason: outcome.reason } : {}),
      ...(outcome.code !== undefined ? { code: outcome.code } : {}),
      requestId: this.id,
      ...this.notes,
    };
    afterOrigin(this.origin, () => {
      const attribution = this.origin?.origin;
      const event: NetworkEventInfo = attribution ? { ...fields, attribution } : fields;
      try {
        this.emit?.(event);
      } catch {
        // A throwing listener must not break the proxy.
      }
    });
  }
}
