export { NetworkLink, type NetworkLinkOptions } from "./link-server.js";
export { NetworkStack, type NetworkStackOptions, type NetworkStackStats } from "./stack.js";
export { OpenUpstream, type OpenUpstreamOptions } from "./open-upstream.js";
export { isPrivateOrSpecialAddress } from "./ip-ranges.js";
export { defaultAddressing, formatIpv4, parseIpv4, type LinkAddressing } from "./addresses.js";
export type {
  Upstream,
  UpstreamTcp,
  UpstreamTcpEvents,
  UpstreamUdp,
  UpstreamUdpEvents,
  Denied,
  FlowSource,
} from "./upstream.js";
export { isDenied } from "./upstream.js";
export type { SynStamp } from "./syn-stamp.js";
export {
  EgressPolicy,
  HostAllowlist,
  canonicalHost,
  type EgressDecision,
  type EgressPolicyOptions,
} from "./policy/index.js";
// The plan (src/config) checks hook rules once, before anything starts.
export { compileRules as checkHookRules, MAX_HOOK_TIMEOUT_MS } from "./http-policy/rules.js";
export { compileHostPattern, type HostPattern } from "./policy/index.js";
export { SYSTEM_CA_BUNDLE_PATHS } from "./tls/ca-bundle-paths.js";
export type {
  HookRule,
  SecretSpec,
  RequestHookContext,
  RequestHookResult,
  ResponseHookContext,
  ResponseHookResult,
} from "./http-policy/index.js";
export type {
  ApprovalNote,
  GuestOrigin,
  HeaderList,
  HostRefusal,
  HttpPolicy,
  HttpRequestHead,
  NetworkEventInfo,
  ProxyHooks,
  NetworkBlockCode,
  RefusedRequest,
} from "./intercept/contract.js";
export type { RequestOutcome } from "./intercept/request-event.js";
/**
 * The proxy, the HTTP policy and the CA, loaded on demand: TLS and X.509 code costs start-up
 * time that open-mode sandboxes (and every CLI call) should not pay.
 */
export const loadInterceptModules = () => import("./intercept-modules.js");
export { secretHeaderProblem } from "./http-policy/secret-scope.js";
