import type {
  BodyAccess,
  HttpPolicy,
  HttpRequestHead,
  HttpResponseHead,
  RequestVerdict,
  ResponseVerdict,
} from "../intercept/contract.js";
import { setHeader } from "./headers.js";
import { runRequestRules } from "./request-phase.js";
import { runResponseRules } from "./response-phase.js";
import {
  compileRules,
  ruleMatches,
  type CompiledRequestRule,
  type CompiledResponseRule,
} from "./rules.js";
import { SecretSet } from "./secrets.js";
import type { HttpPolicyOptions } from "./types.js";

/** The policy of one sandbox, plus what the wiring needs to set the sandbox up. */
export interface SandboxHttpPolicy extends HttpPolicy {
  /** Secret name → placeholder: the guest env gets these instead of the values. */
  placeholders(): Record<string, string>;
  /** Host patterns of every secret, for the allowlist (the reference adds them). */
  secretHosts(): string[];
  /** `text` with real secret values replaced by their placeholders (event URLs, messages). */
  redact(text: string): string;
}

/**
 * Builds the HTTP policy of one sandbox: placeholders are drawn and rules compiled here, so a
 * bad option fails before anything starts (ErrInvalidConfig). Per request: before-phase rules
 * (callbacks see placeholders), then secrets — the leak check and the substitution come last,
 * so no callback ever sees a real value and a callback that moves a placeholder toward a host,
 * port, scheme or header its secret does not allow is caught like the guest doing it. Per
 * response: after-phase rules.
 */
export function createHttpPolicy(options: HttpPolicyOptions = {}): SandboxHttpPolicy {
  const secrets = new SecretSet(options.secrets ?? []);
  const rules = compileRules(options.rules ?? []);
  const before = rules.filter((r): r is CompiledRequestRule => r.phase === "before");
  const after = rules.filter((r): r is CompiledResponseRule => r.phase === "after");
  const rewritesBody = after.filter((r) => r.replacements.length > 0 || r.hook !== undefined);
  // Forwarded request → the same request before substitution, for after-phase callbacks.
  const concealed = new WeakMap<HttpRequestHead, HttpRequestHead>();

  const onRequest = async (
    guestRequest: HttpRequestHead,
    body: BodyAccess,
  ): Promise<RequestVerdict> => {
    const verdict = await runRequestRules(before, guestRequest, body);
    if (verdict.action !== "forward") return { ...verdict, ...redactReason(verdict) };
    let hooked = verdict.request;
    // Body rewrites need the plain text: ask upstream not to compress what we will rewrite.
    if (rewritesBody.some((r) => ruleMatches(r, hooked)))
      hooked = { ...hooked, headers: setHeader(hooked.headers, "Accept-Encoding", "identity") };
    const substituted = secrets.substitute(hooked);
    if (!substituted.ok)
      return { action: "block", code: substituted.code, reason: substituted.reason };
    concealed.set(substituted.request, hooked);
    return {
      ...verdict,
      request: substituted.request,
      ...(substituted.used.length > 0 ? { secrets: substituted.used } : {}),
    };
  };

  const onResponse = async (
    request: HttpRequestHead,
    response: HttpResponseHead,
    body: BodyAccess,
  ): Promise<ResponseVerdict> => {
    if (after.length === 0) return { action: "forward", response };
    const forCallbacks = concealed.get(request) ?? secrets.conceal(request);
    const verdict = await runResponseRules(after, request, forCallbacks, response, body);
    return verdict.action === "block" ? { ...verdict, ...redactReason(verdict) } : verdict;
  };

  // Reasons can carry text from user callbacks, which may have seen echoed real values.
  const redactReason = (v: { action: string; reason?: string }) =>
    v.reason === undefined ? {} : { reason: secrets.redact(v.reason) };

  return {
    onRequest,
    onResponse,
    secretLeak: (request) => {
      const checked = secrets.substitute(request);
      return checked.ok ? undefined : { code: checked.code, reason: checked.reason };
    },
    placeholders: () => secrets.placeholders(),
    secretHosts: () => secrets.hostPatterns(),
    redact: (text) => secrets.redact(text),
  };
}
