/** What intercept mode needs beyond the rest of net/, in one module loaded on demand. */
export { InterceptUpstream } from "./intercept/index.js";
export { createHttpPolicy, loadPolicyScript, loadPolicyScriptSource } from "./http-policy/index.js";
export { loadOrCreateCa } from "./tls/index.js";
