/**
 * The reference API's policy errors (ErrBlocked, ErrHostNotAllowed, ErrSecretLeak) where a
 * user meets them: a refused request never throws in the host program (the guest got a 403),
 * so each blocked network event names the error it stands for, and `networkEventError` turns
 * it into the typed error for callers that want to throw it.
 */
import {
  ErrBlocked,
  ErrHostNotAllowed,
  ErrSecretLeak,
  type WheellockError,
  type WheellockErrorCode,
} from "../errors.js";
import type { NetworkBlockCode, NetworkEventInfo } from "../net/index.js";

export type PolicyErrorCode = Extract<
  WheellockErrorCode,
  "ErrBlocked" | "ErrHostNotAllowed" | "ErrSecretLeak"
>;

const ERROR_BY_BLOCK: Record<NetworkBlockCode, PolicyErrorCode | undefined> = {
  host_not_allowed: "ErrHostNotAllowed",
  secret_leak: "ErrSecretLeak",
  secret_requires_tls: "ErrSecretLeak",
  private_address: "ErrBlocked",
  blocked_by_rule: "ErrBlocked",
  sni_mismatch: "ErrBlocked",
  connect_refused: "ErrBlocked",
  protocol_not_allowed: "ErrBlocked",
  invalid_request: "ErrBlocked",
  // The upstream failed; policy did not refuse anything.
  upstream_error: undefined,
  budget_exceeded: "ErrBlocked",
};

/** The policy error code of a blocked request, if it was refused by policy. */
export function policyErrorCode(info: NetworkEventInfo): PolicyErrorCode | undefined {
  return info.blocked && info.code !== undefined ? ERROR_BY_BLOCK[info.code] : undefined;
}

/** The typed error a blocked network event stands for (undefined when it was not blocked). */
export function networkEventError(info: NetworkEventInfo): WheellockError | undefined {
  const code = policyErrorCode(info);
  const message = `${info.method ? `${info.method} ` : ""}${info.url || info.host}: ${info.reason ?? "blocked by policy"}`;
  switch (code) {
    case "ErrHostNotAllowed":
      return new ErrHostNotAllowed(message);
    case "ErrSecretLeak":
      return new ErrSecretLeak(message);
    case "ErrBlocked":
      return new ErrBlocked(message);
    default:
      return undefined;
  }
}
