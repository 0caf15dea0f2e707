import { isLinkLocalAddress, isPrivateOrSpecialAddress } from "../ip-ranges.js";
import { HostAllowlist, type HostAllowlistOptions } from "./allowlist.js";
import { canonicalHost } from "./host-name.js";

export type EgressDecision =
  | { allowed: true; host: string }
  | {
      allowed: false;
      code: "invalid_host" | "host_not_allowed" | "private_address";
      reason: string;
    };

export interface EgressPolicyOptions extends HostAllowlistOptions {
  allowedHosts?: readonly string[];
  /** Private and special-purpose addresses may be dialed (tests, local services). */
  allowPrivateHosts?: boolean;
}

/**
 * Egress decisions in two steps, made at two moments: the name the guest asked for (Host,
 * SNI) against the allowlist, and later the address actually dialed against the private
 * ranges. Checking the dialed address closes the DNS-rebinding gap: whatever a name resolved
 * to at check time, the connection goes only where the second check allowed.
 */
export class EgressPolicy {
  readonly allowlist: HostAllowlist;
  private readonly allowPrivate: boolean;

  constructor(opts: EgressPolicyOptions = {}) {
    this.allowlist = new HostAllowlist(opts.allowedHosts ?? [], opts);
    this.allowPrivate = opts.allowPrivateHosts ?? false;
  }

  checkHost(rawHost: string, port: number): EgressDecision {
    const decision = this.checkHostSyntax(rawHost);
    if (!decision.allowed) return decision;
    if (!this.allowlist.allows(decision.host, port))
      return {
        allowed: false,
        code: "host_not_allowed",
        reason: `host ${decision.host} is not in the allowlist`,
      };
    return decision;
  }

  /** The name alone (a request whose host the allowlist was overruled for, e.g. approved). */
  checkHostSyntax(rawHost: string): EgressDecision {
    const canonical = canonicalHost(rawHost);
    if (!canonical.ok) return { allowed: false, code: "invalid_host", reason: canonical.reason };
    return { allowed: true, host: canonical.host };
  }

  /**
   * For the address a connection is about to use, after any resolution of `name`. A
   * link-local address (169.254.0.0/16: the cloud metadata service) is reached only through
   * a name an allowlist entry written by someone names, even with `allowPrivateHosts`: a
   * request let through by live approval or audit mode never gets there, whatever its name
   * resolves to.
   */
  checkDialAddress(address: string, name: string = address): EgressDecision {
    if (isLinkLocalAddress(address) && !this.allowlist.namesByEntry(name))
      return {
        allowed: false,
        code: "private_address",
        reason: `${name} resolves to ${address}, a link-local (metadata) address that only an allowlist entry naming it reaches`,
      };
    if (!this.allowPrivate && isPrivateOrSpecialAddress(address))
      return {
        allowed: false,
        code: "private_address",
        reason: `${address} is a private or special-purpose address`,
      };
    return { allowed: true, host: address };
  }
}
