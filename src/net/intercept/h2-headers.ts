/**
 * HTTP/2 header fields <-> the HeaderList the policy works on. HTTP/2 carries the request line
 * in pseudo-headers (`:method`, `:path`, `:authority`, `:scheme`) and forbids the
 * connection-specific fields of HTTP/1.1 (RFC 9113 §8.2.2), so both directions are filtered.
 */
import type { OutgoingHttpHeaders } from "node:http2";
import type { HeaderList, HttpRequestHead } from "./contract.js";
import { defaultPort } from "./admission.js";
import { pairs } from "./headers.js";

/** Never sent in HTTP/2 (Node refuses them, and a peer must treat them as malformed). */
const CONNECTION_SPECIFIC = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
  "host",
]);

export interface H2RequestLine {
  method: string;
  path: string;
  /** `:authority`, else the Host field; undefined when neither or both disagree. */
  authority: string | undefined;
  /** Every field but the pseudo-headers, in wire order (Host included, as HTTP/1.1 has it). */
  headers: HeaderList;
  /** Both `:authority` and Host were sent and they differ (RFC 9113 §8.3.1: malformed). */
  conflictingAuthority: boolean;
}

/** Takes a request's raw header fields (name, value, name, value, ...) apart. */
export function h2RequestLine(rawHeaders: readonly string[]): H2RequestLine {
  let method = "";
  let path = "";
  let authority: string | undefined;
  const headers: HeaderList = [];
  for (const [name, value] of pairs(rawHeaders)) {
    if (name === ":method") method = value;
    else if (name === ":path") path = value;
    else if (name === ":authority") authority = value;
    else if (!name.startsWith(":")) headers.push([name, value]);
  }
  const hosts = headers.filter(([k]) => k === "host").map(([, v]) => v);
  const conflictingAuthority =
    authority !== undefined && hosts.some((h) => h.toLowerCase() !== authority?.toLowerCase());
  // Admission wants exactly one Host: HTTP/2's authority stands in for it.
  const rest = headers.filter(([k]) => k !== "host");
  const host = authority ?? (hosts.length === 1 ? hosts[0] : undefined);
  return {
    method,
    path,
    authority: host,
    headers: host === undefined ? headers : [["host", host], ...rest],
    conflictingAuthority,
  };
}

/** Header fields for an HTTP/2 message: names lower-cased, connection-specific ones dropped. */
export function h2Fields(headers: HeaderList, keepTeTrailers = false): OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (const [rawName, value] of headers) {
    const name = rawName.toLowerCase();
    if (name.startsWith(":") || CONNECTION_SPECIFIC.has(name)) continue;
    // `te` may only say "trailers" (gRPC needs it); anything else is hop-by-hop.
    if (name === "te" && !(keepTeTrailers && value.trim().toLowerCase() === "trailers")) continue;
    const prior = out[name];
    if (prior === undefined) out[name] = value;
    else if (Array.isArray(prior)) prior.push(value);
    else out[name] = [prior, value];
  }
  return out;
}

/** The pseudo-headers and fields of a request going upstream over HTTP/2. */
export function h2RequestFields(head: HttpRequestHead): OutgoingHttpHeaders {
  const authority =
    head.port === defaultPort(head.scheme) ? head.host : `${head.host}:${head.port}`;
  return {
    ...h2Fields(head.headers, true),
    ":method": head.method,
    ":path": head.target,
    ":scheme": head.scheme,
    ":authority": authority,
  };
}

/**
 * HTTP/2 may split Cookie into one field per cookie (RFC 9113 §8.2.3); HTTP/1.1 wants one
 * field, joined with "; ".
 */
export function joinCookies(headers: HeaderList): HeaderList {
  const cookies = headers.filter(([k]) => k.toLowerCase() === "cookie").map(([, v]) => v);
  if (cookies.length < 2) return headers;
  const out = headers.filter(([k]) => k.toLowerCase() !== "cookie");
  out.push(["cookie", cookies.join("; ")]);
  return out;
}
