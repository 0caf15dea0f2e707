import { isIPv4 } from "node:net";

export type CanonicalHost = { ok: true; host: string } | { ok: false; reason: string };

const LABEL_RE = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * The one form of a host name that policy checks and upstream dials both use, so no parser
 * differential can separate "what was allowed" from "what was dialed". Lower-case ASCII, no
 * trailing dot. Anything else is refused rather than repaired: NUL and control characters,
 * userinfo (`@`), percent-encoding, ports, IPv6 literals and zone ids, and non-ASCII (homoglyphs;
 * internationalised names must arrive as punycode `xn--` labels).
 */
export function canonicalHost(raw: string): CanonicalHost {
  if (raw.length === 0) return { ok: false, reason: "empty host name" };
  if (/[^\x21-\x7e]/.test(raw))
    return { ok: false, reason: "host name has control, space or non-ASCII characters" };
  let host = raw.toLowerCase();
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (isIPv4(host)) return { ok: true, host };
  if (host.length === 0 || host.length > 253) return { ok: false, reason: "bad host name length" };
  const labels = host.split(".");
  if (!labels.every((l) => LABEL_RE.test(l)))
    return { ok: false, reason: `not a valid host name: ${JSON.stringify(raw.slice(0, 80))}` };
  // All-numeric names that are not dotted quads (`2130706433`, `0x7f.1`) are IP forms some
  // resolvers accept; refuse them so they cannot stand in for a private address.
  if (labels.every((l) => /^(0x[0-9a-f]*|[0-9]+)$/.test(l)))
    return { ok: false, reason: "numeric host that is not a dotted-quad IPv4 address" };
  return { ok: true, host };
}
