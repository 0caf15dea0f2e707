import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { IncomingMessage } from "node:http";
import { pipeline, type Readable } from "node:stream";
import { admitHead, requestUrl, type Admission, type ConnectionInfo } from "./admission.js";
import type { HeaderList, HttpRequestHead, NetworkBlockCode, ResponseVerdict } from "./contract.js";
import { h2Fields, h2RequestFields, h2RequestLine, joinCookies } from "./h2-headers.js";
import { afterOrigin } from "./flow-origin.js";
import type { H2Origins } from "./h2-origins.js";
import { CANCEL, INTERNAL_ERROR, fieldsOf, respondPlain, respondWhole } from "./h2-respond.js";
import { ExchangeBodies, endToEnd, withLength } from "./headers.js";
import { reconsider } from "./host-refusal.js";
import { withHeaders, type ExchangeDeps } from "./http-exchange.js";
import { decideRequest, policyFailure } from "./request-decision.js";
import type { RequestEvent } from "./request-event.js";
import { DialRefused } from "./upstream-dial.js";
import { openUpstreamRequest } from "./upstream-request.js";

export interface H2ExchangeDeps extends ExchangeDeps {
  origins: H2Origins;
}

/** An upstream response, whichever HTTP version brought it. */
interface UpstreamResponse {
  status: number;
  headers: HeaderList;
  /** HEADERS carried END_STREAM: no body, no trailers (gRPC's "trailers-only" errors). */
  endsWithHead: boolean;
  body: Readable;
  /** Trailer fields, known once `body` has ended. */
  trailers(): HeaderList;
  /** Stops the upstream side (the guest went away, or policy refused the response). */
  cancel(): void;
}

/**
 * One guest HTTP/2 stream, start to finish: the same admission (authority, TLS name,
 * allowlist), HTTP policy (hooks, secrets), events and response policy as an HTTP/1.1
 * request, then upstream over HTTP/2 when the origin speaks it (else HTTP/1.1), with the
 * response streamed back under both sides' flow control and trailers passed through (gRPC
 * status lives there). Reports exactly one event. Never throws: a failure resets the stream.
 */
export async function handleH2Stream(
  deps: H2ExchangeDeps,
  conn: ConnectionInfo,
  stream: ServerHttp2Stream,
  rawHeaders: readonly string[],
): Promise<void> {
  const line = h2RequestLine(rawHeaders);
  const request = { method: line.method, target: line.path, headers: line.headers };
  let admission: Admission = line.conflictingAuthority
    ? {
        ok: false,
        status: 400,
        code: "invalid_request",
        reason: ":authority and Host differ",
        host: conn.name,
        url: requestUrl(conn.scheme, conn.name, conn.port, "/"),
      }
    : admitHead(request, conn, deps.policy);
  const event = deps.events.start(
    {
      method: line.method,
      scheme: conn.scheme,
      port: conn.port,
      ...(admission.ok
        ? {
            host: admission.head.host,
            url: requestUrl(conn.scheme, admission.head.host, admission.head.port, line.path),
          }
        : { host: admission.host, url: admission.url }),
    },
    conn.origin,
  );
  let status: number | undefined;
  const bodies = new ExchangeBodies(deps.bodyBudget);
  stream.once("close", () => {
    bodies.end();
    event.finish(
      status !== undefined ? { status } : { reason: "stream closed before a response was sent" },
    );
  });
  // Everything the guest gets waits for its origin to be known (flow-origin.ts); the
  // policy and the upstream request do not, so the question overlaps them.
  const refuse = (code: number, block: NetworkBlockCode, reason: string): void =>
    afterOrigin(conn.origin, () => {
      event.finish({ status: code, blocked: true, code: block, reason });
      respondPlain(stream, code, `Blocked by policy: ${reason}`, block);
    });
  if (!admission.ok) admission = await reconsider(deps, conn, request, stream, admission, event);
  if (!admission.ok) return refuse(admission.status, admission.code, admission.reason);

  const decision = await decideRequest(
    deps.policy,
    deps.httpPolicy,
    admission.head,
    bodies.buffer(stream),
  );
  if (decision.action === "refuse") return refuse(decision.status, decision.code, decision.reason);
  if (decision.action === "respond") {
    const { response, body } = decision;
    event.bytesIn = body.length;
    return afterOrigin(conn.origin, () => {
      status = response.status;
      respondWhole(stream, response.status, endToEnd(response.headers), body);
    });
  }
  if (decision.secrets !== undefined) event.notes = { ...event.notes, secrets: decision.secrets };
  const { request: forwarded, body } = decision;

  let upstream: UpstreamResponse;
  try {
    upstream = await sendUpstream(deps, forwarded, body, stream, event);
  } catch (err) {
    if (err instanceof DialRefused) return refuse(403, err.code, err.message);
    return afterOrigin(conn.origin, () => {
      event.finish({ status: 502, code: "upstream_error", reason: (err as Error).message });
      respondPlain(stream, 502, `Upstream error: ${(err as Error).message}`);
    });
  }
  status = await relayResponse(deps, forwarded, upstream, stream, event, bodies);
}

/** Sends the request upstream and resolves with the response head (body still streaming). */
async function sendUpstream(
  deps: H2ExchangeDeps,
  forwarded: HttpRequestHead,
  body: Buffer | undefined,
  guest: ServerHttp2Stream,
  event: RequestEvent,
): Promise<UpstreamResponse> {
  const origin = await deps.origins.open(forwarded);
  // Headers made from the origin (traceparent: the exec's span) wait for it.
  const who = deps.upstreamHeaders && event.origin ? await event.origin.wait() : undefined;
  if (guest.destroyed) throw new Error("the guest reset the stream");
  const extra = deps.upstreamHeaders?.(event.id, forwarded, who) ?? [];
  const headers = withHeaders(
    body !== undefined ? withLength(forwarded.headers, body.length) : forwarded.headers,
    extra,
  );
  const sendBody = (to: NodeJS.WritableStream): void => {
    if (body !== undefined) {
      event.bytesOut = body.length;
      to.end(body);
      return;
    }
    guest.on("data", (c: Buffer) => (event.bytesOut += c.length));
    guest.pipe(to);
  };
  if (origin.kind === "h1") {
    const req = openUpstreamRequest(deps.dialer, forwarded, endToEnd(joinCookies(headers)));
    guest.once("close", () => req.destroy());
    sendBody(req);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      req.once("response", resolve);
      req.once("error", reject);
    });
    return {
      status: res.statusCode ?? 502,
      headers: endToEnd(fieldsOf({}, res.rawHeaders)),
      endsWithHead: false,
      body: res,
      trailers: () => fieldsOf({}, res.rawTrailers),
      cancel: () => req.destroy(),
    };
  }
  const req = origin.session.request(h2RequestFields({ ...forwarded, headers }), {
    waitForTrailers: true,
  });
  let guestTrailers: HeaderList | undefined;
  guest.once("trailers", (h: IncomingHttpHeaders, _f: number, raw?: string[]) => {
    guestTrailers = fieldsOf(h, raw);
  });
  req.on("wantTrailers", () => req.sendTrailers(h2Fields(guestTrailers ?? [])));
  // The guest gave up: so does the upstream stream (a rapid reset costs one RST each way).
  guest.once("close", () => {
    if (!req.closed) req.close(CANCEL);
  });
  sendBody(req);
  let trailers: HeaderList = [];
  req.on("trailers", (h: IncomingHttpHeaders, _f: number, raw?: string[]) => {
    trailers = fieldsOf(h, raw);
  });
  const [head, raw] = await new Promise<[IncomingHttpHeaders, string[] | undefined]>(
    (resolve, reject) => {
      req.once("response", (h: IncomingHttpHeaders, _f: number, r?: string[]) => resolve([h, r]));
      req.once("error", reject);
      req.once("close", () => reject(new Error(`upstream reset the stream (code ${req.rstCode})`)));
    },
  );
  return {
    status: Number(head[":status"] ?? 502),
    headers: fieldsOf(head, raw),
    endsWithHead: req.endAfterHeaders,
    body: req,
    trailers: () => trailers,
    cancel: () => {
      if (!req.closed) req.close(CANCEL);
    },
  };
}

/** Response policy, then the response to the guest; resolves with the status sent. */
async function relayResponse(
  deps: H2ExchangeDeps,
  forwarded: HttpRequestHead,
  up: UpstreamResponse,
  guest: ServerHttp2Stream,
  event: RequestEvent,
  bodies: ExchangeBodies,
): Promise<number | undefined> {
  const responseBody = bodies.buffer(up.body);
  let verdict: ResponseVerdict;
  try {
    verdict = await deps.httpPolicy.onResponse(
      forwarded,
      { status: up.status, headers: up.headers },
      responseBody.access,
    );
  } catch (err) {
    verdict = { action: "block", ...policyFailure(err) };
  }
  if (event.origin) await event.origin.wait();
  if (guest.destroyed) return void up.cancel();
  if (verdict.action === "block") {
    up.cancel();
    event.finish({ status: 403, blocked: true, code: verdict.code, reason: verdict.reason });
    respondPlain(guest, 403, `Blocked by policy: ${verdict.reason}`, verdict.code);
    return 403;
  }
  const out = verdict.response;
  const whole = verdict.body ?? (verdict.transformBody ? undefined : responseBody.buffered);
  if (whole === undefined && responseBody.spent) {
    up.cancel();
    const reason = "response body too large for policy inspection";
    event.finish({ status: 502, blocked: true, code: "upstream_error", reason });
    respondPlain(guest, 502, reason, "upstream_error");
    return 502;
  }
  const transform = verdict.transformBody?.();
  const headers =
    whole !== undefined
      ? withLength(endToEnd(out.headers), whole.length)
      : endToEnd(out.headers, transform ? ["content-length"] : []);
  // A head that ended the stream upstream ends it here too: gRPC clients read a status sent
  // that way ("trailers-only") only from a HEADERS frame that carries END_STREAM.
  const headOnly = up.endsWithHead && verdict.body === undefined;
  try {
    guest.respond(
      { ...h2Fields(headers), ":status": out.status },
      headOnly ? { endStream: true } : { waitForTrailers: true },
    );
  } catch (err) {
    up.cancel();
    event.finish({ status: 502, code: "upstream_error", reason: (err as Error).message });
    guest.close(INTERNAL_ERROR);
    return undefined;
  }
  if (headOnly) return out.status;
  // Trailers (gRPC's status) go out after the last DATA frame, as upstream sent them.
  guest.on("wantTrailers", () => guest.sendTrailers(h2Fields(up.trailers())));
  if (whole !== undefined) {
    up.body.resume();
    event.bytesIn = whole.length;
    guest.end(whole);
    return out.status;
  }
  const source = transform ? up.body.pipe(transform) : up.body;
  if (transform) up.body.on("error", (err) => transform.destroy(err));
  source.on("data", (c: Buffer) => (event.bytesIn += c.length));
  pipeline(source, guest, (err) => {
    if (!err) return;
    up.cancel();
    if (!guest.destroyed) guest.close(INTERNAL_ERROR);
  });
  return out.status;
}
