import type { IncomingMessage, ServerResponse } from "node:http";
import { TLSSocket } from "node:tls";
import type { EgressPolicy } from "../policy/egress-policy.js";
import { admit, requestLine, requestUrl, type ConnectionInfo } from "./admission.js";
import type {
  HeaderList,
  HttpPolicy,
  HttpRequestHead,
  NetworkBlockCode,
  ProxyHooks,
  ResponseVerdict,
} from "./contract.js";
import { afterOrigin, type FlowOrigin } from "./flow-origin.js";
import type { ByteBudget } from "../byte-budget.js";
import { relayBody, type RelayBudget } from "./body-relay.js";
import { ExchangeBodies, endToEnd, flat, pairs, withLength } from "./headers.js";
import { reconsider } from "./host-refusal.js";
import { decideRequest, policyFailure } from "./request-decision.js";
import type { RequestEvent, RequestEvents } from "./request-event.js";
import { DialRefused, type HostDialer } from "./upstream-dial.js";
import { openUpstreamRequest } from "./upstream-request.js";

export interface ExchangeDeps extends Pick<ProxyHooks, "onHostRefused" | "upstreamHeaders"> {
  policy: EgressPolicy;
  httpPolicy: HttpPolicy;
  dialer: HostDialer;
  events: RequestEvents;
  /** What the sandbox's response bodies may hold in relay buffers, all flows together. */
  relayBudget?: RelayBudget;
  /** What the bodies its policy reads may hold, all flows together (BODY_BUDGET_BYTES). */
  bodyBudget?: ByteBudget;
}

/**
 * Headers replaced by (or added from) `extra`, names compared case-insensitively; an `extra`
 * entry with an empty value only removes the guest's headers of that name (`upstreamHeaders`).
 */
export function withHeaders(headers: HeaderList, extra: HeaderList): HeaderList {
  if (extra.length === 0) return headers;
  const names = new Set(extra.map(([k]) => k.toLowerCase()));
  return [...headers.filter(([k]) => !names.has(k.toLowerCase())), ...extra.filter(([, v]) => v)];
}

function sendPlain(
  res: ServerResponse,
  status: number,
  text: string,
  code?: NetworkBlockCode,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(`${text}\n`);
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": body.length,
    ...(code ? { "x-wheellock-blocked": code } : {}),
  });
  res.end(body);
}

/**
 * One guest HTTP request, start to finish: admission (Host, SNI, allowlist), the HTTP policy,
 * the upstream request, the response policy, and the response streamed back with backpressure.
 * Reports exactly one event.
 */
export async function handleRequest(
  deps: ExchangeDeps,
  conn: ConnectionInfo,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  let admission = admit(req, conn, deps.policy);
  const where = admission.ok
    ? {
        host: admission.head.host,
        url: requestUrl(
          conn.scheme,
          admission.head.host,
          admission.head.port,
          admission.head.target,
        ),
      }
    : { host: admission.host, url: admission.url };
  const event = deps.events.start(
    { method: req.method ?? "", scheme: conn.scheme, port: conn.port, ...where },
    conn.origin,
  );
  // Nothing reaches the guest before we know who asked (flow-origin.ts says why).
  const refuse = (status: number, code: NetworkBlockCode, reason: string) =>
    afterOrigin(conn.origin, () => {
      event.finish({ status, blocked: true, code, reason });
      sendPlain(res, status, `Blocked by policy: ${reason}`, code);
    });
  // Closed before any response (the guest went away, or its request turned out malformed
  // after the head): no status to report, least of all the server's default 200.
  const bodies = new ExchangeBodies(deps.bodyBudget);
  res.once("close", () => {
    bodies.end();
    event.finish(
      res.headersSent
        ? { status: res.statusCode }
        : { reason: "connection closed before a response was sent" },
    );
  });
  if (!admission.ok)
    admission = await reconsider(
      deps,
      conn,
      requestLine(req),
      req.socket,
      admission,
      event,
      "close-or-end",
    );
  if (!admission.ok) return refuse(admission.status, admission.code, admission.reason);

  const decision = await decideRequest(
    deps.policy,
    deps.httpPolicy,
    admission.head,
    bodies.buffer(req),
  );
  if (decision.action === "refuse") return refuse(decision.status, decision.code, decision.reason);
  if (decision.action === "respond") {
    const { response, body } = decision;
    event.bytesIn = body.length;
    res.once("finish", () => event.finish({ status: response.status }));
    return afterOrigin(conn.origin, () => {
      res.writeHead(
        response.status,
        response.statusMessage ?? "",
        flat(withLength(endToEnd(response.headers), body.length)),
      );
      res.end(body);
    });
  }
  if (decision.secrets !== undefined) event.notes = { ...event.notes, secrets: decision.secrets };
  const { request: forwarded, body } = decision;
  let headers =
    body !== undefined
      ? withLength(endToEnd(forwarded.headers), body.length)
      : endToEnd(forwarded.headers);
  if (deps.upstreamHeaders) {
    const origin = conn.origin ? await conn.origin.wait() : undefined;
    headers = withHeaders(headers, deps.upstreamHeaders(event.id, forwarded, origin));
  }
  forwardUpstream(deps, forwarded, headers, body, req, res, event, conn.origin, bodies);
}

function forwardUpstream(
  deps: ExchangeDeps,
  forwarded: HttpRequestHead,
  headers: ReturnType<typeof endToEnd>,
  body: Buffer | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  event: RequestEvent,
  origin: FlowOrigin | undefined,
  bodies: ExchangeBodies,
): void {
  // The guest went away while the policy ran: "close" has fired (the event is finished) and
  // would never tear an upstream request down, which would then hold its socket for good.
  const guest = req.socket;
  if (res.destroyed || guest.destroyed) return;
  const upstream = openUpstreamRequest(deps.dialer, forwarded, headers);
  // A pipelined response still waiting for its turn gets no "close" when the guest's
  // connection goes (Node tells only the response on the wire) and its request never ends,
  // so the connection's own close is what reaches every exchange on it.
  const abandon = (): void => {
    if (!res.writableFinished) upstream.destroy();
  };
  res.once("close", abandon);
  guest.once("close", abandon);
  upstream.once("close", () => guest.off("close", abandon));
  upstream.on("error", (err) =>
    afterOrigin(origin, () => {
      if (err instanceof DialRefused) {
        event.finish({ status: 403, blocked: true, code: err.code, reason: err.message });
        sendPlain(res, 403, `Blocked by policy: ${err.message}`, err.code);
      } else {
        event.finish({ status: 502, blocked: false, code: "upstream_error", reason: err.message });
        sendPlain(res, 502, `Upstream error: ${err.message}`);
      }
    }),
  );
  upstream.on("response", (ures) => {
    void respond(deps, forwarded, ures, res, event, origin, bodies);
  });
  if (body !== undefined) {
    event.bytesOut = body.length;
    upstream.end(body);
  } else {
    req.on("data", (c: Buffer) => (event.bytesOut += c.length));
    req.pipe(upstream);
  }
}

async function respond(
  deps: ExchangeDeps,
  forwarded: HttpRequestHead,
  ures: IncomingMessage,
  res: ServerResponse,
  event: RequestEvent,
  origin: FlowOrigin | undefined,
  bodies: ExchangeBodies,
): Promise<void> {
  const head = {
    status: ures.statusCode ?? 502,
    statusMessage: ures.statusMessage ?? "",
    headers: pairs(ures.rawHeaders),
  };
  const responseBody = bodies.buffer(ures);
  let verdict: ResponseVerdict;
  try {
    verdict = await deps.httpPolicy.onResponse(forwarded, head, responseBody.access);
  } catch (err) {
    verdict = { action: "block", ...policyFailure(err) };
  }
  if (origin) await origin.wait();
  if (res.destroyed) return void ures.destroy();
  if (verdict.action === "block") {
    ures.destroy();
    event.finish({ status: 403, blocked: true, code: verdict.code, reason: verdict.reason });
    return sendPlain(res, 403, `Blocked by policy: ${verdict.reason}`, verdict.code);
  }
  const out = verdict.response;
  const whole = verdict.body ?? (verdict.transformBody ? undefined : responseBody.buffered);
  if (whole === undefined && responseBody.spent) {
    ures.destroy();
    const reason = "response body too large for policy inspection";
    event.finish({ status: 502, blocked: true, code: "upstream_error", reason });
    return sendPlain(res, 502, reason, "upstream_error");
  }
  res.once("finish", () => event.finish({ status: out.status }));
  if (whole !== undefined) {
    ures.resume();
    event.bytesIn = whole.length;
    res.writeHead(
      out.status,
      out.statusMessage ?? "",
      flat(withLength(endToEnd(out.headers), whole.length)),
    );
    res.end(whole);
    return;
  }
  const transform = verdict.transformBody?.();
  const headers = transform
    ? endToEnd(out.headers, ["content-length", "transfer-encoding"])
    : endToEnd(out.headers);
  res.writeHead(out.status, out.statusMessage ?? "", flat(headers));
  // Bytes are counted on the stream that feeds the guest.
  const source = transform ? ures.pipe(transform) : ures;
  if (transform) ures.on("error", (err) => transform.destroy(err));
  const length = transform ? undefined : Number(ures.headers["content-length"]);
  relayBody(source, res, res.socket instanceof TLSSocket, length, {
    ...(deps.relayBudget ? { budget: deps.relayBudget } : {}),
    onBytes: (n) => (event.bytesIn += n),
    onFailed: () => {
      ures.destroy();
      res.destroy();
    },
  });
}
