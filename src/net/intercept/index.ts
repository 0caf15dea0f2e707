export { InterceptUpstream, type InterceptUpstreamOptions } from "./intercept-upstream.js";
export * from "./contract.js";
