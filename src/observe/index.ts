/**
 * Seeing what a sandbox does and keeping it within bounds: which exec did what (attribution),
 * live approval of hosts outside the allowlist, allowlists suggested from a recorded run,
 * OpenTelemetry spans, usage and budgets. Plain logic driven by the sandbox (src/sandbox),
 * testable without a VM.
 */
export {
  Attributor,
  type AttributionAsk,
  type AttributorOptions,
  type ExecAttribution,
} from "./attributor.js";
export {
  APPROVAL_DECISIONS,
  ApprovalQueue,
  approvalEntry,
  MAX_APPROVED_ENTRIES,
  neverApprovable,
  type ApprovalDecision,
  type ApprovalEventInfo,
  type ApprovalHooks,
  type ApprovalSettings,
  type BlockedRequest,
} from "./approvals.js";
export {
  parseEventLines,
  suggestAllowlist,
  type SuggestedEntry,
  type SuggestedPolicy,
} from "./suggest.js";
export { SandboxTracer, type TracedFileOp } from "./tracing.js";
export {
  MAX_USAGE_HOSTS,
  OTHER_HOSTS,
  UsageMeter,
  type Budgets,
  type HostSample,
  type SandboxUsage,
  type TrafficTotals,
} from "./usage.js";
