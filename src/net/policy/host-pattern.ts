import { isIPv4 } from "node:net";
import { ErrInvalidConfig } from "../../errors.js";

/**
 * One allowlist entry: a host glob with an optional port. Globs (case-insensitive):
 * `*` matches every host; `*.example.com` matches subdomains at any depth but not
 * `example.com` itself; `example.*` matches by prefix; any other `*` matches any run of
 * characters in order (`api-*.example.com`); anything else is an exact name or IPv4 address.
 */
export interface HostPattern {
  /** As given, for listing and removal. */
  readonly text: string;
  /** Undefined: any port. */
  readonly port: number | undefined;
  matches(host: string, port: number): boolean;
}

const PATTERN_CHARS_RE = /^[a-z0-9_.*-]+$/;

function hostMatcher(pattern: string): (host: string) => boolean {
  if (pattern === "*") return () => true;
  const stars = pattern.split("*").length - 1;
  if (stars === 0) return (h) => h === pattern;
  if (stars === 1 && pattern.startsWith("*.")) {
    const suffix = pattern.slice(1);
    return (h) => h.length > suffix.length && h.endsWith(suffix);
  }
  if (stars === 1 && pattern.endsWith(".*")) {
    const prefix = pattern.slice(0, -1);
    return (h) => h.length > prefix.length && h.startsWith(prefix);
  }
  const parts = pattern.split("*");
  const first = parts[0] ?? "";
  const last = parts[parts.length - 1] ?? "";
  const middle = parts.slice(1, -1);
  return (h) => {
    if (h.length < first.length + last.length) return false;
    if (!h.startsWith(first) || !h.endsWith(last)) return false;
    let at = first.length;
    const end = h.length - last.length;
    for (const m of middle) {
      const i = h.indexOf(m, at);
      if (i < 0 || i + m.length > end) return false;
      at = i + m.length;
    }
    return true;
  };
}

export function compileHostPattern(text: string): HostPattern {
  const trimmed = text.trim().toLowerCase();
  let hostPart = trimmed;
  let port: number | undefined;
  const colon = trimmed.lastIndexOf(":");
  if (colon >= 0) {
    hostPart = trimmed.slice(0, colon);
    const portText = trimmed.slice(colon + 1);
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535)
      throw new ErrInvalidConfig(`allowlist entry ${JSON.stringify(text)}: bad port`);
    port = Number(portText);
  }
  if (hostPart.endsWith(".") && hostPart !== ".") hostPart = hostPart.slice(0, -1);
  if (hostPart === "" || !PATTERN_CHARS_RE.test(hostPart) || hostPart.includes(".."))
    throw new ErrInvalidConfig(
      `allowlist entry ${JSON.stringify(text)}: expected a host name, IPv4 address or glob`,
    );
  if (!hostPart.includes("*") && /^[0-9.]+$/.test(hostPart) && !isIPv4(hostPart))
    throw new ErrInvalidConfig(`allowlist entry ${JSON.stringify(text)}: bad IPv4 address`);
  const matchHost = hostMatcher(hostPart);
  return {
    text: text.trim(),
    port,
    matches: (host, p) => (port === undefined || port === p) && matchHost(host),
  };
}
