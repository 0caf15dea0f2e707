import type { IncomingMessage } from "node:http";
import { admit, type Admission, type ConnectionInfo } from "./admission.js";
import type { EgressPolicy } from "../policy/egress-policy.js";
import type { ProxyHooks, RefusedRequest } from "./contract.js";
import type { RequestEvent } from "./request-event.js";

/** What reconsidering needs of the exchange's dependencies. */
export interface RefusalDeps extends Pick<ProxyHooks, "onHostRefused"> {
  policy: EgressPolicy;
}

/**
 * A request the allowlist refused, put to the sandbox (live approval, audit mode) before the
 * guest is answered. Only the allowlist can be overruled: every other check of admission runs
 * again on a request let through, and the HTTP policy (secrets, hooks) and the dial-time
 * address check still come after it.
 */
export async function reconsider(
  deps: RefusalDeps,
  conn: ConnectionInfo,
  req: IncomingMessage,
  refused: Extract<Admission, { ok: false }>,
  event: RequestEvent,
): Promise<Admission> {
  const ask = deps.onHostRefused;
  if (!ask || refused.code !== "host_not_allowed") return refused;
  const request: RefusedRequest = {
    requestId: event.id,
    method: req.method ?? "",
    url: refused.url,
    scheme: conn.scheme,
    host: refused.host,
    port: conn.port,
    reason: refused.reason,
    attribution: conn.origin ? await conn.origin.wait() : undefined,
  };
  // A held request must not keep its place (or a person's attention) once its guest left.
  const gone = new AbortController();
  const leave = (): void => gone.abort();
  const socket = req.socket;
  if (socket.destroyed) gone.abort();
  else socket.once("close", leave);
  let outcome: Awaited<ReturnType<typeof ask>>;
  try {
    outcome = await ask(request, gone.signal);
  } catch {
    outcome = { allow: false };
  } finally {
    socket.off("close", leave);
  }
  if (outcome.note) event.notes = { ...event.notes, ...outcome.note };
  if (!outcome.allow)
    return outcome.reason === undefined ? refused : { ...refused, reason: outcome.reason };
  return admit(req, conn, deps.policy, true);
}
