/**
 * Live approval: a request to a host outside the allowlist is held, not refused, while the
 * host side decides — an in-process callback (`onBlockedRequest`), a person at `run -it
 * --approve`, or anyone with the sandbox's id (`wheellock allow-list approve|deny`, the
 * `decideRequest` call). Bounded: each request waits at most `timeoutMs` (then it is denied),
 * and at most `maxPending` wait at once (more are denied at once). Only the allowlist can be
 * overruled: a literal private, loopback or metadata address is never held, and everything
 * after the allowlist (secret scopes, hooks, the dial-time address check) still applies.
 */
import type { HostRefusal, RefusedRequest } from "../net/index.js";
import { isPrivateOrSpecialAddress } from "../net/index.js";
import type { ExecAttribution } from "./attributor.js";

/**
 * once: this request; sandbox: it and its host:port from now on (the allowlist); deny: this
 * request; deny-sandbox: it and every later request to its host:port, refused without asking
 * for the rest of the sandbox's life (kept here, not in the allowlist).
 */
export type ApprovalDecision = "once" | "sandbox" | "deny" | "deny-sandbox";

export const APPROVAL_DECISIONS: readonly ApprovalDecision[] = [
  "once",
  "sandbox",
  "deny",
  "deny-sandbox",
];

/**
 * A request held for a decision (`onBlockedRequest`'s argument, `pendingRequests()`);
 * `requestId` is the id to decide it by (`decideRequest`, `allow-list approve ID REQUEST`).
 */
export interface BlockedRequest extends Pick<
  RefusedRequest,
  "requestId" | "method" | "url" | "scheme" | "host" | "port" | "address"
> {
  /** Who made it (absent when it could not be told). */
  readonly attribution?: ExecAttribution;
  /** ISO 8601: when it was held, and when it will be denied if nobody decides. */
  readonly heldAt: string;
  readonly expiresAt: string;
}

/** One `approval` event: a request held, or how it ended. */
export interface ApprovalEventInfo {
  readonly state: "pending" | "decided";
  readonly request: BlockedRequest;
  /**
   * decided: once/sandbox approved it; deny/deny-sandbox/timeout/cap refused it; gone: its
   * guest left.
   */
  readonly decision?: "once" | "sandbox" | "deny" | "deny-sandbox" | "timeout" | "cap" | "gone";
  /** decided: who decided (the callback, a `decideRequest` call, the clock, the guest). */
  readonly by?: "callback" | "api" | "timeout" | "guest";
}

export interface ApprovalSettings {
  /** How long a request waits for a decision (then it is denied). */
  readonly timeoutMs: number;
  /** Requests waiting at once; more are denied at once. */
  readonly maxPending: number;
}

/**
 * Allowlist entries "sandbox" decisions add at most (and as many "deny-sandbox" ones); past it
 * such a decision decides only its own request. The guest picks the hosts: a decider that
 * always answers "sandbox" must not let it grow the list (checked on every request) without
 * end.
 */
export const MAX_APPROVED_ENTRIES = 1024;

export interface ApprovalHooks {
  /**
   * In-process decider; a throw or an unknown answer denies. `ended` aborts when the request
   * stops waiting for other reasons (decided elsewhere, timed out, its guest left).
   */
  decide?: (
    request: BlockedRequest,
    ended: AbortSignal,
  ) => ApprovalDecision | Promise<ApprovalDecision>;
  /** Adds an allowlist entry (a "sandbox" decision). */
  allow(entry: string): void;
  emit(info: ApprovalEventInfo): void;
}

interface Held {
  request: BlockedRequest;
  /** `joined`: let through by another request's "sandbox" decision (its entry is added). */
  finish: (
    decision: ApprovalEventInfo["decision"] & string,
    by: ApprovalEventInfo["by"],
    joined?: boolean,
  ) => void;
}

/** Names that stand for the host itself, whatever resolves them. */
const LOOPBACK_NAME_RE = /(^|\.)(localhost|localdomain)$|^ip6-(localhost|loopback)$/;
/** Names of cloud metadata services (they resolve to link-local addresses there). */
const METADATA_NAMES = new Set(["metadata.google.internal", "metadata.goog", "metadata"]);

/** Why a refused request must never be offered for approval, or undefined. */
export function neverApprovable(host: string): string | undefined {
  if (/^[0-9.]+$/.test(host) && isPrivateOrSpecialAddress(host))
    return `${host} is a private, loopback or metadata address`;
  if (LOOPBACK_NAME_RE.test(host)) return `${host} names the loopback interface`;
  if (METADATA_NAMES.has(host)) return `${host} names a cloud metadata service`;
  return undefined;
}

/** The allowlist entry a "sandbox" decision adds: the host on the port it was asked on. */
export function approvalEntry(request: Pick<BlockedRequest, "host" | "port">): string {
  return `${request.host}:${request.port}`;
}

export class ApprovalQueue {
  private readonly held = new Map<number, Held>();
  private closed = false;
  private approvedEntries = 0;
  /** host:port refused for the rest of the sandbox's life ("deny-sandbox"). */
  private readonly deniedEntries = new Set<string>();

  constructor(
    private readonly settings: ApprovalSettings,
    private readonly hooks: ApprovalHooks,
  ) {}

  /** Requests waiting for a decision, oldest first. */
  pending(): BlockedRequest[] {
    return [...this.held.values()].map((h) => h.request);
  }

  /** Decides a waiting request; false when it is not waiting (decided, timed out, unknown). */
  decide(requestId: number, decision: ApprovalDecision): boolean {
    const h = this.held.get(requestId);
    if (!h || !APPROVAL_DECISIONS.includes(decision)) return false;
    h.finish(decision, "api");
    return true;
  }

  /** Denies everything still waiting (the sandbox is stopping). */
  close(): void {
    this.closed = true;
    for (const h of [...this.held.values()]) h.finish("deny", "api");
  }

  /**
   * The `onHostRefused` of the proxy: holds the request until it is decided, or until `gone`
   * says its guest left (the place it held is free at once).
   */
  hold(refused: RefusedRequest, gone?: AbortSignal): Promise<HostRefusal> {
    const never = neverApprovable(refused.host);
    if (never !== undefined)
      return Promise.resolve({
        allow: false,
        reason: `${refused.reason} (${never}: never approvable)`,
      });
    const now = Date.now();
    const request: BlockedRequest = {
      requestId: refused.requestId,
      method: refused.method,
      url: refused.url,
      scheme: refused.scheme,
      host: refused.host,
      port: refused.port,
      ...(refused.address !== undefined ? { address: refused.address } : {}),
      ...(refused.attribution ? { attribution: refused.attribution } : {}),
      heldAt: new Date(now).toISOString(),
      expiresAt: new Date(now + this.settings.timeoutMs).toISOString(),
    };
    if (gone?.aborted) return Promise.resolve({ allow: false });
    if (this.deniedEntries.has(approvalEntry(request)))
      return Promise.resolve({
        allow: false,
        reason: `${refused.reason} (denied for the sandbox)`,
        note: { approval: { decision: "deny-sandbox", waitedMs: 0 } },
      });
    if (this.closed || this.held.size >= this.settings.maxPending) {
      this.hooks.emit({ state: "decided", request, decision: "cap" });
      return Promise.resolve({
        allow: false,
        reason: `${refused.reason} (${this.settings.maxPending} requests already await approval)`,
        note: { approval: { decision: "cap", waitedMs: 0 } },
      });
    }
    const ended = new AbortController();
    return new Promise<HostRefusal>((resolve) => {
      const timer = setTimeout(() => finish("timeout", "timeout"), this.settings.timeoutMs);
      const onGone = (): void => finish("gone", "guest");
      const finish: Held["finish"] = (decision, by, joined = false) => {
        if (!this.held.has(request.requestId)) return;
        this.held.delete(request.requestId);
        clearTimeout(timer);
        gone?.removeEventListener("abort", onGone);
        ended.abort();
        const waitedMs = Date.now() - now;
        const entry = approvalEntry(request);
        let added = false;
        if (decision === "sandbox" && !joined && this.approvedEntries < MAX_APPROVED_ENTRIES) {
          this.approvedEntries++;
          added = true;
          try {
            this.hooks.allow(entry);
          } catch {
            // The entry is checked like any allowlist entry; the request still goes.
          }
        }
        this.hooks.emit({ state: "decided", request, decision, ...(by ? { by } : {}) });
        if (decision === "deny-sandbox") this.denyForSandbox(request, by);
        // Its host:port is allowed now: requests to it still waiting go the same way (as a
        // request sent now would), instead of waiting to time out.
        if (added)
          for (const h of [...this.held.values()])
            if (approvalEntry(h.request) === entry) h.finish("sandbox", by, true);
        const approved = decision === "once" || decision === "sandbox";
        resolve({
          allow: approved,
          note: { approval: { decision, waitedMs } },
          ...(approved
            ? {}
            : {
                reason:
                  decision === "timeout"
                    ? `${refused.reason} (no approval within ${this.settings.timeoutMs} ms)`
                    : decision === "gone"
                      ? `${refused.reason} (the guest left while it was held)`
                      : decision === "deny-sandbox"
                        ? `${refused.reason} (denied for the sandbox)`
                        : `${refused.reason} (denied)`,
              }),
        });
      };
      this.held.set(request.requestId, { request, finish });
      gone?.addEventListener("abort", onGone, { once: true });
      this.hooks.emit({ state: "pending", request });
      const decide = this.hooks.decide;
      if (decide) {
        Promise.resolve()
          .then(() => decide(request, ended.signal))
          .then(
            (d) => finish(APPROVAL_DECISIONS.includes(d) ? d : "deny", "callback"),
            () => finish("deny", "callback"),
          );
      }
    });
  }

  /** Later requests to its host:port are refused unasked; those waiting now go the same way. */
  private denyForSandbox(request: BlockedRequest, by: ApprovalEventInfo["by"]): void {
    const entry = approvalEntry(request);
    if (this.deniedEntries.size >= MAX_APPROVED_ENTRIES) return;
    this.deniedEntries.add(entry);
    for (const h of [...this.held.values()])
      if (approvalEntry(h.request) === entry) h.finish("deny-sandbox", by);
  }
}
