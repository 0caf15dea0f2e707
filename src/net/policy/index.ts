export { EgressPolicy, type EgressDecision, type EgressPolicyOptions } from "./egress-policy.js";
export { HostAllowlist, type HostAllowlistOptions } from "./allowlist.js";
export { canonicalHost, type CanonicalHost } from "./host-name.js";
export { compileHostPattern, type HostPattern } from "./host-pattern.js";
