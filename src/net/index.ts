export { NetworkLink, type NetworkLinkOptions } from "./link-server.js";
export { NetworkStack, type NetworkStackOptions, type NetworkStackStats } from "./stack.js";
export { OpenUpstream, type OpenUpstreamOptions } from "./open-upstream.js";
export { isPrivateOrSpecialAddress } from "./ip-ranges.js";
export { defaultAddressing, formatIpv4, parseIpv4, type LinkAddressing } from "./addresses.js";
export type { Upstream, UpstreamTcp, UpstreamTcpEvents, UpstreamUdp, Denied } from "./upstream.js";
export {
  EgressPolicy,
  HostAllowlist,
  canonicalHost,
  type EgressDecision,
  type EgressPolicyOptions,
} from "./policy/index.js";
