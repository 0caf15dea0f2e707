import { admitHead, type Admission, type ConnectionInfo, type RequestLine } from "./admission.js";
import type { EgressPolicy } from "../policy/egress-policy.js";
import type { HttpPolicy, ProxyHooks, RefusedRequest } from "./contract.js";
import type { HostDialer } from "./upstream-dial.js";
import type { RequestEvent } from "./request-event.js";

/** What reconsidering needs of the exchange's dependencies. */
export interface RefusalDeps extends Pick<ProxyHooks, "onHostRefused"> {
  policy: EgressPolicy;
  httpPolicy?: Pick<HttpPolicy, "secretLeak">;
  /** Tells the question the address its host goes to, where that is known without DNS. */
  dialer?: Pick<HostDialer, "knownAddressOf">;
}

/** What carries the request toward the guest (an HTTP/1.1 socket, an HTTP/2 stream). */
interface GuestSide {
  readonly destroyed: boolean;
  readonly readableEnded?: boolean;
  once(event: "close" | "end", fn: () => void): unknown;
  off(event: "close" | "end", fn: () => void): unknown;
}

/**
 * What says the guest left a held request: always its side closing; for an HTTP/1.1
 * connection also its end of input (FIN, or TLS close_notify). Node's server keeps a
 * half-closed connection open while a response is pending (httpAllowHalfOpen), so a client
 * that gave up (`curl -m`) shows only as that end. An HTTP/2 stream's end is only the end of
 * its request body: there a reset or the session's close is what closes the stream.
 */
export type GuestLeaves = "close" | "close-or-end";

/**
 * A request the allowlist refused, put to the sandbox (live approval, audit mode) before the
 * guest is answered. Only the allowlist can be overruled: every other check of admission runs
 * again on a request let through, and the HTTP policy (secrets, hooks) and the dial-time
 * address check still come after it.
 */
export async function reconsider(
  deps: RefusalDeps,
  conn: ConnectionInfo,
  line: RequestLine,
  guest: GuestSide,
  refused: Extract<Admission, { ok: false }>,
  event: RequestEvent,
  leaves: GuestLeaves = "close",
): Promise<Admission> {
  const ask = deps.onHostRefused;
  if (!ask || refused.code !== "host_not_allowed") return refused;
  // Secret leaks are never approvable: nobody is asked about a request that would fail so.
  const admitted = admitHead(line, conn, deps.policy, true);
  const leak = admitted.ok ? deps.httpPolicy?.secretLeak?.(admitted.head) : undefined;
  if (leak) return { ...refused, code: leak.code, reason: leak.reason };
  const address = deps.dialer?.knownAddressOf(refused.host);
  // Where it would be dialed is known (a resolve override) and no decision could let it go
  // there (link-local: only a name an entry someone wrote names; private without
  // allowPrivateHosts): refused as such, nobody is asked to approve what cannot happen.
  if (address !== undefined) {
    const dial = deps.policy.checkDialAddress(address, refused.host);
    if (!dial.allowed)
      return { ...refused, status: 403, code: "private_address", reason: dial.reason };
  }
  const attribution = conn.origin ? await conn.origin.wait() : undefined;
  const request: RefusedRequest = {
    requestId: event.id,
    method: line.method,
    url: refused.url,
    scheme: conn.scheme,
    host: refused.host,
    port: conn.port,
    reason: refused.reason,
    attribution,
    ...(address !== undefined ? { address } : {}),
  };
  // A held request must not keep its place (or a person's attention) once its guest left.
  const gone = new AbortController();
  const leave = (): void => gone.abort();
  const watchEnd = leaves === "close-or-end";
  if (guest.destroyed || (watchEnd && guest.readableEnded === true)) gone.abort();
  guest.once("close", leave);
  if (watchEnd) guest.once("end", leave);
  let outcome: Awaited<ReturnType<typeof ask>>;
  try {
    outcome = await ask(request, gone.signal);
  } catch {
    outcome = { allow: false };
  } finally {
    guest.off("close", leave);
    guest.off("end", leave);
  }
  if (outcome.note) event.notes = { ...event.notes, ...outcome.note };
  if (!outcome.allow)
    return outcome.reason === undefined ? refused : { ...refused, reason: outcome.reason };
  return admitHead(line, conn, deps.policy, true);
}
