/**
 * `run` flags of docs/OBSERVE.md: live approval (`--approve`), audit mode, budgets. Budgets
 * stop the sandbox with exit status EXIT_BUDGET and one line saying which budget.
 */
import { InvalidArgumentError, type Command } from "commander";
import type { SandboxOptions } from "../config/index.js";
import { positiveInteger, positiveNumber } from "./flags.js";

export interface ObserveFlags {
  approve?: boolean;
  approveTimeout?: number;
  networkAudit?: boolean;
  maxEgressBytes?: number;
  maxCpuSeconds?: number;
  maxRequests?: number;
}

/** The longest `--approve-timeout` (the SDK's approval.timeoutMs bound, in seconds). */
const MAX_APPROVE_TIMEOUT_S = 600;

/**
 * Errors in the flag's own name and unit: the SDK's checks behind it speak of
 * `approval.timeoutMs` in milliseconds and `maxEgressBytes >= 1`, which a CLI user never wrote.
 */
function approveTimeout(value: string): number {
  const n = positiveInteger("--approve-timeout", 1)(value);
  if (n > MAX_APPROVE_TIMEOUT_S)
    throw new InvalidArgumentError(
      `--approve-timeout must be at most ${MAX_APPROVE_TIMEOUT_S} (seconds), got "${value}"`,
    );
  return n;
}

function moreThanZero(name: string): (value: string) => number {
  const parse = positiveNumber(name);
  return (value) => {
    const n = parse(value);
    if (n <= 0) throw new InvalidArgumentError(`${name} must be more than 0, got "${value}"`);
    return n;
  };
}

/** Exit status of `run` when a budget stopped the sandbox. */
export const EXIT_BUDGET = 122;

export function addObserveOptions(cmd: Command): Command {
  return cmd
    .option(
      "--approve",
      "hold requests to hosts outside the allowlist and ask (a prompt with -it or a terminal; " +
        "with -d: `wheellock allow-list approve|deny ID REQUEST`)",
    )
    .option(
      "--approve-timeout <s>",
      "deny a held request nobody decided after this many seconds (default 30, at most 600)",
      approveTimeout,
    )
    .option(
      "--network-audit",
      "let every host through but record what the allowlist would refuse (see policy suggest)",
    )
    .option(
      "--max-egress-bytes <n>",
      "stop the sandbox once its network flows moved this many bytes",
      positiveInteger("--max-egress-bytes", 1),
    )
    .option(
      "--max-cpu-seconds <s>",
      "stop the sandbox once its VM used this much host CPU time",
      moreThanZero("--max-cpu-seconds"),
    )
    .option(
      "--max-requests <n>",
      "refuse requests beyond this many (403 budget_exceeded)",
      positiveInteger("--max-requests", 1),
    );
}

export function observeSandboxOptions(flags: ObserveFlags): SandboxOptions {
  const timeout = flags.approveTimeout;
  return {
    ...(flags.approve || timeout !== undefined
      ? { approval: timeout !== undefined ? { timeoutMs: timeout * 1000 } : true }
      : {}),
    ...(flags.networkAudit ? { networkAudit: true } : {}),
    ...(flags.maxEgressBytes !== undefined ? { maxEgressBytes: flags.maxEgressBytes } : {}),
    ...(flags.maxCpuSeconds !== undefined ? { maxCpuSeconds: flags.maxCpuSeconds } : {}),
    ...(flags.maxRequests !== undefined ? { maxRequests: flags.maxRequests } : {}),
  };
}
