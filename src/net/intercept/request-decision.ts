import type { EgressPolicy } from "../policy/egress-policy.js";
import type {
  HttpPolicy,
  HttpRequestHead,
  NetworkBlockCode,
  HttpResponseHead,
} from "./contract.js";
import type { BodyBuffer } from "./headers.js";

/** What to do with an admitted guest request, after the HTTP policy had its say. */
export type RequestDecision =
  | { action: "refuse"; status: number; code: NetworkBlockCode; reason: string }
  | { action: "respond"; response: HttpResponseHead; body: Buffer }
  | {
      action: "forward";
      request: HttpRequestHead;
      /** The whole body when the policy read or replaced it; undefined: stream it. */
      body: Buffer | undefined;
    };

/** A policy that threw is a refusal, never a pass. */
export function policyFailure(err: unknown): { code: NetworkBlockCode; reason: string } {
  return { code: "blocked_by_rule", reason: `policy failed: ${(err as Error).message}` };
}

/**
 * Runs the request policy on an admitted request, the same way for HTTP/1 and HTTP/2: a
 * policy that fails refuses, a retargeted request is checked against the allowlist again, and
 * a body the policy started reading but could not hold cannot be forwarded.
 */
export async function decideRequest(
  policy: EgressPolicy,
  httpPolicy: HttpPolicy,
  head: HttpRequestHead,
  requestBody: BodyBuffer,
): Promise<RequestDecision> {
  let verdict;
  try {
    verdict = await httpPolicy.onRequest(head, requestBody.access);
  } catch (err) {
    return { action: "refuse", status: 403, ...policyFailure(err) };
  }
  if (verdict.action === "block")
    return { action: "refuse", status: 403, code: verdict.code, reason: verdict.reason };
  if (verdict.action === "respond")
    return { action: "respond", response: verdict.response, body: verdict.body };
  const forwarded = verdict.request;
  if (forwarded.host !== head.host || forwarded.port !== head.port) {
    // A policy that retargets a request does not get around the allowlist.
    const recheck = policy.checkHost(forwarded.host, forwarded.port);
    if (!recheck.allowed)
      return { action: "refuse", status: 403, code: "host_not_allowed", reason: recheck.reason };
  }
  const body = verdict.body ?? requestBody.buffered;
  if (body === undefined && requestBody.spent)
    return {
      action: "refuse",
      status: 413,
      code: "invalid_request",
      reason: "request body too large for policy inspection",
    };
  return { action: "forward", request: forwarded, body };
}
