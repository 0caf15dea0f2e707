/**
 * The boundary between the three parts of intercept mode, fixed first so they can be built
 * apart:
 * - the proxy (`src/net/intercept/`): recognises HTTP and TLS in a guest TCP flow, terminates
 *   TLS with a per-host certificate, parses HTTP/1.1, checks the host allowlist, forwards
 *   upstream, streams the response back, reports events;
 * - the HTTP policy (`src/net/http-policy/`): secrets and hook rules/callbacks, which decide what
 *   happens to one request and its response, with no sockets of its own;
 * - the wiring (`src/sandbox`, `src/config`, `src/cli`): options and flags, the CA in the guest,
 *   placeholders in the guest env, events to the SDK and `--events`, runtime allowlist changes.
 */
import type { Transform } from "node:stream";
import type { SynStamp } from "../syn-stamp.js";

/** Why a connection or request was refused; stable strings for events and error codes. */
export type NetworkBlockCode =
  | "host_not_allowed"
  | "private_address"
  | "secret_leak"
  /** A secret's placeholder in a plain-HTTP request, for a secret that is only sent over TLS. */
  | "secret_requires_tls"
  | "blocked_by_rule"
  | "sni_mismatch"
  | "connect_refused"
  | "protocol_not_allowed"
  | "invalid_request"
  | "upstream_error"
  /** The sandbox's request budget (`maxRequests`) is spent. */
  | "budget_exceeded";

/**
 * Who in the guest opened a flow, as the sandbox's guest agent told it (guest-reported: good
 * for accounting and debugging, not a security boundary).
 */
export interface GuestOrigin {
  /** The exec whose process tree opened it; null when no exec did (an image's daemon). */
  readonly execId: number | null;
  /** The guest process holding the socket. */
  readonly pid?: number;
  /** That process's command line (at most 16 arguments). */
  readonly command?: readonly string[];
}

/** How a request the allowlist refused was let through or refused by the sandbox. */
export interface ApprovalNote {
  /**
   * once/sandbox: approved; deny: refused by a person or callback; deny-sandbox: refused, and
   * so is every later request to its host:port without asking; timeout: nobody answered;
   * cap: too many held already; gone: the guest closed the connection while it was held.
   */
  readonly decision: "once" | "sandbox" | "deny" | "deny-sandbox" | "timeout" | "cap" | "gone";
  /** Milliseconds the request was held. */
  readonly waitedMs: number;
}

/** One HTTP request (or one raw TCP connection) as the sandbox's event stream reports it. */
export interface NetworkEventInfo {
  /** Empty for raw TCP. */
  method: string;
  /** With the real scheme (`https://` for intercepted TLS); placeholders never substituted. */
  url: string;
  scheme: "http" | "https" | "tcp" | "udp";
  host: string;
  port: number;
  /** Status returned to the guest (403 for blocked requests); absent for raw TCP. */
  status?: number;
  /** Body bytes from upstream to the guest. */
  bytesIn: number;
  /** Body bytes from the guest to upstream. */
  bytesOut: number;
  durationMs: number;
  blocked: boolean;
  reason?: string;
  code?: NetworkBlockCode;
  /** Numbers the sandbox's requests in order (the id `allow-list approve` takes). */
  requestId: number;
  /** Who opened the flow; absent when it could not be told (the process was gone). */
  attribution?: GuestOrigin;
  /** Names of the secrets whose values were substituted into the request. */
  secrets?: string[];
  /** A host outside the allowlist, held for a decision (live approval). */
  approval?: ApprovalNote;
  /** Audit mode: what the allowlist would have refused (the request went through). */
  audit?: { code: NetworkBlockCode; reason: string };
}

/** A request the allowlist refused, before the guest gets an answer. */
export interface RefusedRequest {
  readonly requestId: number;
  readonly method: string;
  readonly url: string;
  readonly scheme: "http" | "https";
  readonly host: string;
  readonly port: number;
  /** The allowlist's reason. */
  readonly reason: string;
  readonly attribution: GuestOrigin | undefined;
  /**
   * The IPv4 address the host would dial for `host`, where it is known without a DNS query (a
   * resolve override, an IP literal); absent otherwise: a refused name is not looked up
   * before it is allowed. A dial after approval resolves and checks again.
   */
  readonly address?: string;
}

/** What the sandbox made of a refused request (live approval, audit mode). */
export interface HostRefusal {
  /** Let it through: the request goes on as if the allowlist had allowed it. */
  readonly allow: boolean;
  /** A refusal's reason for the guest and the event (default: the allowlist's). */
  readonly reason?: string;
  /** Merged into the request's event. */
  readonly note?: Pick<NetworkEventInfo, "approval" | "audit">;
}

export type HeaderList = Array<[name: string, value: string]>;

export interface HttpRequestHead {
  method: string;
  scheme: "http" | "https";
  /** Canonical host (lower case, no port) that the allowlist accepted. */
  host: string;
  port: number;
  /** Origin-form target: path plus `?query`, as sent on the wire. */
  target: string;
  /** In wire order, names as sent. */
  headers: HeaderList;
}

export interface HttpResponseHead {
  status: number;
  statusMessage?: string;
  headers: HeaderList;
}

/** Lets a policy look at a body; the proxy buffers it (bounded) and sends the buffer on. */
export interface BodyAccess {
  /** Rejects when the body is larger than `limitBytes`. */
  readBody(limitBytes: number): Promise<Buffer>;
}

export type RequestVerdict =
  /**
   * Forward `request` (possibly changed); `body` replaces the guest's body when present;
   * `secrets` names the secrets substituted into it (for events and usage).
   */
  | { action: "forward"; request: HttpRequestHead; body?: Buffer; secrets?: string[] }
  /** The guest gets a 403 and an event with `code`; nothing goes upstream. */
  | { action: "block"; code: NetworkBlockCode; reason: string }
  /** A hook answered the request itself; nothing goes upstream. */
  | { action: "respond"; response: HttpResponseHead; body: Buffer };

export type ResponseVerdict =
  | {
      action: "forward";
      response: HttpResponseHead;
      /** Replaces the whole body (Content-Length set, Transfer-Encoding dropped). */
      body?: Buffer;
      /** Streaming rewrite of the body (e.g. SSE `data:` lines); length headers dropped. */
      transformBody?: () => Transform;
    }
  | { action: "block"; code: NetworkBlockCode; reason: string };

/** Secrets and hooks for one sandbox. Everything async may run user code (with timeouts). */
export interface HttpPolicy {
  /**
   * The secrets' leak check alone, on a request as the guest sent it (no hooks run): asked
   * before a refused request is put to an approver, since no approval may let a leak through.
   */
  secretLeak?(request: HttpRequestHead): { code: NetworkBlockCode; reason: string } | undefined;
  onRequest(request: HttpRequestHead, body: BodyAccess): Promise<RequestVerdict>;
  /** `request` is the one that was forwarded (after secrets and hooks). */
  onResponse(
    request: HttpRequestHead,
    response: HttpResponseHead,
    body: BodyAccess,
  ): Promise<ResponseVerdict>;
}

/** What the sandbox adds to the proxy (docs/OBSERVE.md); every hook is optional. */
export interface ProxyHooks {
  /**
   * Who opened a guest flow, asked as the flow starts. What the proxy sends the guest waits
   * for a promised answer (the asker bounds how long), so the process is still there to be
   * found; an answer given at once (a stamped SYN from a process seen lately) holds nothing.
   */
  origin?(flow: {
    protocol: "tcp" | "udp";
    guestPort: number;
    /** TCP: who connected, as the flow's first SYN said; absent when it said nothing. */
    stamp?: SynStamp;
  }): GuestOrigin | undefined | Promise<GuestOrigin | undefined>;
  /** A request the allowlist refused: hold it for a decision, or let it through (audit). */
  onHostRefused?(
    request: RefusedRequest,
    /** Aborted when the guest closes the connection: nobody is waiting for the answer. */
    gone: AbortSignal,
  ): HostRefusal | Promise<HostRefusal>;
  /**
   * A raw TCP connection (a `rawTcpAllow` rule) about to be relayed: a reason refuses it
   * (the request budget counts these too).
   */
  refuseRawRelay?(): string | undefined;
  /**
   * Headers for a request about to go upstream (e.g. `traceparent`): each replaces the
   * guest's of that name; one with an empty value only removes the guest's.
   */
  upstreamHeaders?(
    requestId: number,
    request: HttpRequestHead,
    origin: GuestOrigin | undefined,
  ): HeaderList;
}

/** Forwards everything unchanged: intercept mode with an allowlist and nothing else. */
export const PASS_THROUGH_POLICY: HttpPolicy = {
  onRequest: async (request) => ({ action: "forward", request }),
  onResponse: async (_request, response) => ({ action: "forward", response }),
};
