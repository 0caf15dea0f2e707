import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { admit, requestLine, requestUrl, type ConnectionInfo } from "./admission.js";
import type { HeaderList, NetworkBlockCode, RequestVerdict } from "./contract.js";
import { endToEnd, headerValue, pairs, withLength, writeRawResponse } from "./headers.js";
import { reconsider } from "./host-refusal.js";
import type { ExchangeDeps } from "./http-exchange.js";
import { DialRefused } from "./upstream-dial.js";
import { openUpstreamRequest } from "./upstream-request.js";

const NO_BODY = { readBody: async () => Buffer.alloc(0) };

function declaresBody(headers: HeaderList): boolean {
  const length = headerValue(headers, "content-length");
  return (
    headerValue(headers, "transfer-encoding") !== undefined ||
    (length !== undefined && length.trim() !== "0")
  );
}

/**
 * An HTTP Upgrade (WebSocket): the same admission and request policy as any request; once the
 * upstream answers 101 the two sockets are piped both ways (with stream backpressure). The
 * event is reported when the tunnel closes, with the bytes that crossed it.
 */
export async function handleUpgrade(
  deps: ExchangeDeps,
  conn: ConnectionInfo,
  req: IncomingMessage,
  guest: Duplex,
  head: Buffer,
): Promise<void> {
  let admission = admit(req, conn, deps.policy);
  const event = deps.events.start(
    {
      method: req.method ?? "",
      scheme: conn.scheme,
      port: conn.port,
      ...(admission.ok
        ? {
            host: admission.head.host,
            url: requestUrl(conn.scheme, admission.head.host, conn.port, admission.head.target),
          }
        : { host: admission.host, url: admission.url }),
    },
    conn.origin,
  );
  guest.on("error", () => guest.destroy());
  // Everything the guest gets waits for its origin to be known (flow-origin.ts).
  if (conn.origin) await conn.origin.wait();
  const refuse = (status: number, code: NetworkBlockCode, reason: string) => {
    event.finish({ status, blocked: true, code, reason });
    const body = Buffer.from(`Blocked by policy: ${reason}\n`);
    writeRawResponse(
      guest,
      status,
      status === 403 ? "Forbidden" : status === 502 ? "Bad Gateway" : "Bad Request",
      [
        ["Content-Type", "text/plain; charset=utf-8"],
        ["Content-Length", String(body.length)],
        ["Connection", "close"],
        ["X-Wheellock-Blocked", code],
      ],
      body,
    );
  };
  if (!admission.ok)
    admission = await reconsider(deps, conn, requestLine(req), req.socket, admission, event);
  if (!admission.ok) return refuse(admission.status, admission.code, admission.reason);
  // Node hands everything after an upgrade request's head over as `head`, unparsed, so a body
  // would never be forwarded while its Content-Length was: a declined upgrade would leave the
  // kept-alive upstream connection waiting for bytes that the next request then supplies.
  if (declaresBody(admission.head.headers))
    return refuse(400, "invalid_request", "an Upgrade request cannot carry a body");
  let verdict: RequestVerdict;
  try {
    verdict = await deps.httpPolicy.onRequest(admission.head, NO_BODY);
  } catch (err) {
    return refuse(403, "blocked_by_rule", `policy failed: ${(err as Error).message}`);
  }
  if (verdict.action === "block") return refuse(403, verdict.code, verdict.reason);
  if (verdict.action === "forward" && verdict.secrets !== undefined && verdict.secrets.length > 0)
    event.notes = { ...event.notes, secrets: verdict.secrets };
  if (verdict.action === "respond") {
    const r = verdict.response;
    event.finish({ status: r.status });
    writeRawResponse(
      guest,
      r.status,
      r.statusMessage ?? "",
      withLength(endToEnd(r.headers), verdict.body.length),
      verdict.body,
    );
    return;
  }
  const forwarded = verdict.request;
  if (forwarded.host !== admission.head.host || forwarded.port !== admission.head.port) {
    const recheck = deps.policy.checkHost(forwarded.host, forwarded.port);
    if (!recheck.allowed) return refuse(403, "host_not_allowed", recheck.reason);
  }
  // The upgrade headers are hop-by-hop but are the point here: put them back.
  const upgradeTo = headerValue(admission.head.headers, "upgrade") ?? "websocket";
  const extra = deps.upstreamHeaders?.(event.id, forwarded, conn.origin?.origin) ?? [];
  const extraNames = new Set(extra.map(([k]) => k.toLowerCase()));
  const headers: HeaderList = [
    ...endToEnd(forwarded.headers).filter(([k]) => !extraNames.has(k.toLowerCase())),
    ...extra,
    ["Connection", "Upgrade"],
    ["Upgrade", upgradeTo],
  ];
  // The guest went away while the policy ran: its "close" has fired and would never tear the
  // upstream request (or the tunnel it becomes) down.
  if (guest.destroyed)
    return void event.finish({ reason: "connection closed before a response was sent" });
  const upstream = openUpstreamRequest(deps.dialer, forwarded, headers);
  guest.once("close", () => upstream.destroy());
  upstream.on("error", (err) => {
    if (err instanceof DialRefused) refuse(403, err.code, err.message);
    else refuse(502, "upstream_error", err.message);
  });
  upstream.on("response", (ures) => {
    // No upgrade (e.g. an h2c offer the server ignored): an ordinary response, relayed with
    // backpressure and delimited by closing the connection.
    const h = endToEnd(pairs(ures.rawHeaders), ["transfer-encoding"]);
    writeRawResponse(
      guest,
      ures.statusCode ?? 502,
      ures.statusMessage ?? "",
      [...h, ["Connection", "close"]],
      Buffer.alloc(0),
      false,
    );
    ures.on("data", (c: Buffer) => (event.bytesIn += c.length));
    ures.once("end", () => event.finish({ status: ures.statusCode ?? 502 }));
    ures.once("error", () => guest.destroy());
    ures.pipe(guest);
  });
  upstream.on("upgrade", (ures, usocket: Duplex, uhead: Buffer) => {
    const responseHeaders = pairs(ures.rawHeaders);
    writeRawResponse(
      guest,
      ures.statusCode ?? 101,
      ures.statusMessage ?? "Switching Protocols",
      responseHeaders,
      uhead,
      false,
    );
    if (head.length > 0) usocket.write(head);
    event.bytesOut = head.length;
    event.bytesIn = uhead.length;
    guest.on("data", (c: Buffer) => (event.bytesOut += c.length));
    usocket.on("data", (c: Buffer) => (event.bytesIn += c.length));
    usocket.on("error", () => guest.destroy());
    guest.pipe(usocket);
    usocket.pipe(guest);
    const done = () => {
      event.finish({ status: ures.statusCode ?? 101 });
      guest.destroy();
      usocket.destroy();
    };
    guest.once("close", done);
    usocket.once("close", done);
  });
  upstream.end();
}
