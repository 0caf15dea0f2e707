import { request as httpRequest, type ClientRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIPv4 } from "node:net";
import type { HeaderList, HttpRequestHead } from "./contract.js";
import { flat } from "./headers.js";
import type { HostDialer } from "./upstream-dial.js";
import { upstreamReadOptions } from "./upstream-reads.js";

/**
 * Opens the upstream request for a guest request that policy let through: same scheme as the
 * guest used, the name resolved and the address checked by the dialer's lookup, TLS verified
 * against the trust store with the host as server name, HTTP/1.1 only.
 */
export function openUpstreamRequest(
  dialer: HostDialer,
  head: HttpRequestHead,
  headers: HeaderList,
): ClientRequest {
  const tls = head.scheme === "https";
  // Node connects to an IP literal without calling `lookup`: an override of one is applied,
  // and checked, here (admission checked only the literal).
  const override = dialer.literalOverride(head.host);
  const options = {
    host: override ?? head.host,
    port: head.port,
    method: head.method,
    path: head.target,
    headers: flat(headers),
    setHost: false,
    lookup: dialer.lookup,
    family: 4,
    agent: tls ? dialer.httpsAgent : dialer.httpAgent,
    // Used only if the agent opens a new socket for this request (upstream-reads.ts).
    ...(tls ? { ALPNProtocols: ["http/1.1"], onread: upstreamReadOptions() } : {}),
    ...(tls && !isIPv4(head.host) ? { servername: head.host } : {}),
  };
  const req = tls ? httpsRequest(options) : httpRequest(options);
  if (override !== undefined) {
    try {
      dialer.checkAddress(override, head.host);
    } catch (err) {
      // The same path as a refusal from `lookup`: the request's 'error'.
      process.nextTick(() => req.destroy(err as Error));
      return req;
    }
  }
  req.on("socket", (socket) => {
    if (!socket.connecting) return;
    const timer = setTimeout(
      () => req.destroy(new Error(`connect to ${head.host}:${head.port} timed out`)),
      dialer.connectTimeoutMs,
    );
    socket.once("connect", () => clearTimeout(timer));
    socket.once("close", () => clearTimeout(timer));
  });
  return req;
}
