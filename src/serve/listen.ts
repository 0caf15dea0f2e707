/**
 * Where a node listens, and the rule that goes with it: off loopback, TLS is required (tokens
 * and secret values cross the network in every request) unless the operator says `--insecure`
 * (TLS terminated in front of the node, or a private network they trust).
 */
import { isIP } from "node:net";
import { ErrInvalidConfig } from "../errors.js";

export interface ListenAddress {
  host: string;
  port: number;
}

export const DEFAULT_LISTEN = "127.0.0.1:7777";

/** `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all addresses). */
export function parseListen(text: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535)
    throw new ErrInvalidConfig(
      `--listen must be HOST:PORT (e.g. ${DEFAULT_LISTEN}), got ${JSON.stringify(text)}`,
    );
  const host = match[1] ?? (match[2] || "0.0.0.0");
  return { host, port };
}

export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}

/**
 * Throws unless the address is loopback, TLS is on, or the operator accepted plain HTTP; in
 * that last case `warn` is told once, as the operator may have meant TLS to end in front.
 */
export function checkTransportSecurity(
  address: ListenAddress,
  tls: boolean,
  insecure: boolean,
  warn: (message: string) => void = () => undefined,
): void {
  if (tls || isLoopback(address.host)) return;
  if (insecure) {
    warn(
      `plain HTTP on ${address.host} (--insecure): tokens and secrets cross the network in ` +
        "clear unless TLS ends in front of this node",
    );
    return;
  }
  throw new ErrInvalidConfig(
    `listening on ${address.host} without TLS would send tokens and secrets in clear: ` +
      "give --tls-cert and --tls-key (or --insecure if TLS ends in front of this node)",
  );
}
