/**
 * The options of docs/OBSERVE.md: live approval, audit mode, budgets, trace propagation.
 * Checked once here; `onBlockedRequest` is a callback and stays in this process (planToJson
 * refuses it, like hook callbacks).
 */
import { ErrInvalidConfig } from "../errors.js";
import type { ApprovalDecision, BlockedRequest, Budgets } from "../observe/index.js";
import { checkBoolean, checkIntegerAtLeast, checkPositiveNumber } from "./field-checks.js";
import type { ResolvedSandboxConfig, SandboxOptions } from "./options.js";

export const DEFAULT_APPROVAL_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_PENDING_APPROVALS = 16;
/** A held request keeps a guest connection and a proxy request open: keep the wait bounded. */
const MAX_APPROVAL_TIMEOUT_MS = 10 * 60_000;
const MAX_PENDING_LIMIT = 256;

export type OnBlockedRequest = (
  request: BlockedRequest,
  /** Aborts when the request stops waiting otherwise (decided elsewhere, timeout, guest left). */
  ended: AbortSignal,
) => ApprovalDecision | Promise<ApprovalDecision>;

export type ObserveFields = Pick<
  ResolvedSandboxConfig,
  "approval" | "networkAudit" | "budgets" | "tracePropagation"
>;

function checkApproval(opts: SandboxOptions): ResolvedSandboxConfig["approval"] {
  const value = opts.approval;
  const off = {
    enabled: false,
    timeoutMs: DEFAULT_APPROVAL_TIMEOUT_MS,
    maxPending: DEFAULT_MAX_PENDING_APPROVALS,
  };
  if (opts.onBlockedRequest !== undefined && typeof opts.onBlockedRequest !== "function")
    throw new ErrInvalidConfig("onBlockedRequest must be a function");
  if (value === undefined || value === false)
    return opts.onBlockedRequest !== undefined ? { ...off, enabled: true } : off;
  if (value === true) return { ...off, enabled: true };
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ErrInvalidConfig("approval must be true, false or { timeoutMs, maxPending }");
  const unknown = Object.keys(value).find((k) => k !== "timeoutMs" && k !== "maxPending");
  if (unknown !== undefined)
    throw new ErrInvalidConfig(`approval: unknown field ${JSON.stringify(unknown)}`);
  const bounded = (field: "timeoutMs" | "maxPending", fallback: number, max: number): number => {
    const v = value[field];
    if (v === undefined) return fallback;
    const n = checkIntegerAtLeast(`approval.${field}`, v, 1);
    if (n > max) throw new ErrInvalidConfig(`approval.${field} must be at most ${max}`);
    return n;
  };
  return {
    enabled: true,
    timeoutMs: bounded("timeoutMs", DEFAULT_APPROVAL_TIMEOUT_MS, MAX_APPROVAL_TIMEOUT_MS),
    maxPending: bounded("maxPending", DEFAULT_MAX_PENDING_APPROVALS, MAX_PENDING_LIMIT),
  };
}

function checkBudgets(opts: SandboxOptions): Budgets {
  return {
    ...(opts.maxEgressBytes !== undefined
      ? { maxEgressBytes: checkIntegerAtLeast("maxEgressBytes", opts.maxEgressBytes, 1) }
      : {}),
    ...(opts.maxCpuSeconds !== undefined
      ? { maxCpuSeconds: checkPositiveNumber("maxCpuSeconds", opts.maxCpuSeconds) }
      : {}),
    ...(opts.maxRequests !== undefined
      ? { maxRequests: checkIntegerAtLeast("maxRequests", opts.maxRequests, 1) }
      : {}),
  };
}

/** `intercepting`: whether the network options turned interception on (audit mode does). */
export function checkObserveOptions(opts: SandboxOptions, intercepting: boolean): ObserveFields {
  const approval = checkApproval(opts);
  const networkAudit =
    opts.networkAudit === undefined ? false : checkBoolean("networkAudit", opts.networkAudit);
  const budgets = checkBudgets(opts);
  const tracePropagation =
    opts.tracePropagation === undefined
      ? false
      : checkBoolean("tracePropagation", opts.tracePropagation);
  if (approval.enabled && networkAudit)
    throw new ErrInvalidConfig(
      "approval and networkAudit exclude each other: audit mode lets every host through",
    );
  const needsProxy = approval.enabled
    ? "approval (onBlockedRequest)"
    : budgets.maxRequests !== undefined
      ? "maxRequests"
      : tracePropagation
        ? "tracePropagation"
        : undefined;
  if (needsProxy !== undefined && !intercepting)
    throw new ErrInvalidConfig(
      `${needsProxy} works on intercepted requests: give allowedHosts, denyAllHosts or networkIntercept`,
    );
  return {
    approval: Object.freeze(approval),
    networkAudit,
    budgets: Object.freeze(budgets),
    tracePropagation,
  };
}
