export { createHttpPolicy, type SandboxHttpPolicy } from "./policy.js";
export { loadPolicyScript, loadPolicyScriptSource } from "./policy-script.js";
export { SecretSet, newPlaceholder } from "./secrets.js";
export { sseDataTransform, MAX_SSE_LINE_BYTES } from "./sse-transform.js";
export { MAX_BUFFERED_BODY_BYTES } from "./hook-request.js";
export { DEFAULT_HOOK_TIMEOUT_MS } from "./rules.js";
export type {
  BodyReplacement,
  DirectResponse,
  HookRequest,
  HookResultCommon,
  HookRule,
  HttpPolicyOptions,
  RequestHookContext,
  RequestHookResult,
  RequestHookRule,
  ResponseHookContext,
  ResponseHookResult,
  ResponseHookRule,
  SecretSpec,
} from "./types.js";
