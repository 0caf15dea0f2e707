import type { IncomingMessage } from "node:http";
import { isIPv4 } from "node:net";
import { isPrivateOrSpecialAddress } from "../ip-ranges.js";
import { canonicalHost } from "../policy/host-name.js";
import type { EgressPolicy } from "../policy/egress-policy.js";
import type { HeaderList, HttpRequestHead, NetworkBlockCode } from "./contract.js";
import type { FlowOrigin } from "./flow-origin.js";
import { pairs } from "./headers.js";

/** What the proxy knows about a guest connection before any request on it. */
export interface ConnectionInfo {
  scheme: "http" | "https";
  /** The port the guest connected to: requests go upstream to that port. */
  port: number;
  /** How the guest named the destination: SNI, else the synthetic DNS name, else the IP. */
  name: string;
  /** HTTPS: the name the leaf certificate was issued for; every Host must equal it. */
  tlsName?: string;
  /** Who in the guest opened the connection (once known). */
  origin?: FlowOrigin;
}

export type Admission =
  | { ok: true; head: HttpRequestHead }
  | {
      ok: false;
      status: number;
      code: NetworkBlockCode;
      reason: string;
      host: string;
      url: string;
    };

const HOST_PORT_RE = /^([^:]+)(?::([0-9]{1,5}))?$/;

export function defaultPort(scheme: "http" | "https"): number {
  return scheme === "https" ? 443 : 80;
}

export function requestUrl(scheme: string, host: string, port: number, target: string): string {
  const shownPort = port === defaultPort(scheme as "http" | "https") ? "" : `:${port}`;
  return `${scheme}://${host}${shownPort}${target}`;
}

/**
 * Decides whether one guest request may go anywhere: an origin-form target, exactly one Host
 * that parses as a canonical host on the connection's port, equal to the TLS name for HTTPS
 * (domain fronting refused), allowed by the allowlist, and, for a literal IPv4 host, an address
 * policy lets the proxy dial (a private literal outside the allowlist is `private_address`).
 */
export function admit(
  req: IncomingMessage,
  conn: ConnectionInfo,
  policy: EgressPolicy,
  /** The allowlist was overruled for this request (live approval, audit mode). */
  skipAllowlist = false,
): Admission {
  return admitHead(requestLine(req), conn, policy, skipAllowlist);
}

export function requestLine(req: IncomingMessage): RequestLine {
  return { method: req.method ?? "", target: req.url ?? "", headers: pairs(req.rawHeaders) };
}

/** A request as admission sees it, whatever the HTTP version it came in. */
export interface RequestLine {
  method: string;
  target: string;
  /** In wire order; HTTP/2's `:authority` arrives here as a Host header. */
  headers: HeaderList;
}

/** `admit` for a request already taken apart (HTTP/2 streams). */
export function admitHead(
  line: RequestLine,
  conn: ConnectionInfo,
  policy: EgressPolicy,
  skipAllowlist = false,
): Admission {
  const { method, target, headers } = line;
  const refuse = (status: number, code: NetworkBlockCode, reason: string, host = conn.name) => ({
    ok: false as const,
    status,
    code,
    reason,
    host,
    url: requestUrl(conn.scheme, host, conn.port, target.startsWith("/") ? target : "/"),
  });
  if (method === "CONNECT") return refuse(403, "connect_refused", "CONNECT is not allowed");
  if (!target.startsWith("/") && !(method === "OPTIONS" && target === "*"))
    return refuse(400, "invalid_request", "request target must be origin-form (/path)");
  const hosts = headers.filter(([k]) => k.toLowerCase() === "host");
  if (hosts.length !== 1) return refuse(400, "invalid_request", "exactly one Host header required");
  const hostMatch = HOST_PORT_RE.exec(hosts[0]?.[1] ?? "");
  if (!hostMatch) return refuse(400, "invalid_request", "unparsable Host header");
  const canonical = canonicalHost(hostMatch[1] ?? "");
  if (!canonical.ok) return refuse(400, "invalid_request", canonical.reason);
  const host = canonical.host;
  const port = hostMatch[2] !== undefined ? Number(hostMatch[2]) : defaultPort(conn.scheme);
  if (port !== conn.port)
    return refuse(400, "invalid_request", `Host port ${port} is not the port connected to`, host);
  if (conn.tlsName !== undefined && host !== conn.tlsName)
    return refuse(
      403,
      "sni_mismatch",
      `Host ${host} does not match the TLS server name ${conn.tlsName}`,
      host,
    );
  // A private, loopback or metadata literal is refused as such before the allowlist speaks:
  // refused as "not in the allowlist" it would look fixable (to live approval, to `policy
  // suggest`) when no approval may ever let it through. Only an allowlist entry naming it
  // (with `allowPrivateHosts`, checked at dial time below) reaches it.
  if (isIPv4(host) && isPrivateOrSpecialAddress(host) && !policy.allowlist.allows(host, port))
    return refuse(
      403,
      "private_address",
      `${host} is a private, loopback or metadata address outside the allowlist`,
      host,
    );
  const decision = skipAllowlist ? policy.checkHostSyntax(host) : policy.checkHost(host, port);
  if (!decision.allowed)
    return refuse(
      decision.code === "invalid_host" ? 400 : 403,
      decision.code === "invalid_host" ? "invalid_request" : decision.code,
      decision.reason,
      host,
    );
  if (isIPv4(host)) {
    const dial = policy.checkDialAddress(host);
    if (!dial.allowed) return refuse(403, "private_address", dial.reason, host);
  }
  // The upstream gets the Host that was checked, not the guest's spelling of it (case, a
  // trailing dot, leading zeros in the port): no parser differential past this point.
  const canonicalHostHeader = hostMatch[2] !== undefined ? `${host}:${port}` : host;
  return {
    ok: true,
    head: {
      method,
      scheme: conn.scheme,
      host,
      port,
      target,
      headers: headers.map(([k, v]) => [k, k.toLowerCase() === "host" ? canonicalHostHeader : v]),
    },
  };
}
