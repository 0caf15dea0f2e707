/**
 * Runs one user callback with a deadline. Unlike the reference (which ignores a failed callback
 * and lets the request through), a throw or a timeout fails closed: the caller blocks.
 */
import { ruleBlock, type RuleBlock } from "./hook-request.js";
import type { HookResultCommon } from "./types.js";

export type HookOutcome<T> = { ok: true; result: T } | { ok: false; reason: string };

/** One line, bounded: user error messages end up in events. */
function oneLine(text: string, max = 200): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

export async function runHook<C, T>(
  label: string,
  timeoutMs: number,
  makeContext: (signal: AbortSignal) => C,
  hook: (ctx: C) => T | Promise<T>,
): Promise<HookOutcome<T>> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    const run = Promise.resolve().then(() => hook(makeContext(controller.signal)));
    // A hook that rejects after its deadline must not become an unhandled rejection.
    run.catch(() => undefined);
    const winner = await Promise.race([run.then((result) => ({ result })), deadline]);
    if (winner === "timeout") {
      controller.abort(new Error(`hook rule ${label} timed out`));
      return { ok: false, reason: `hook rule ${label} timed out after ${timeoutMs} ms` };
    }
    return { ok: true, result: winner.result };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, reason: `hook rule ${label} failed: ${oneLine(message)}` };
  } finally {
    clearTimeout(timer);
  }
}

/** A rule's callback run and its result read: a block, nothing to do, or changes to apply. */
export type RuleHookVerdict<R> = { block: RuleBlock } | { changes: R | undefined };

export async function runRuleHook<C, R extends HookResultCommon>(
  rule: { label: string; timeoutMs: number },
  makeContext: (signal: AbortSignal) => C,
  hook: (ctx: C) => void | "allow" | "block" | R | Promise<void | "allow" | "block" | R>,
  /** Why a result cannot be applied (it then blocks), or undefined. */
  problem: (r: R) => string | undefined,
  /** Block reason when the callback gives none. */
  blockedText: string,
): Promise<RuleHookVerdict<R>> {
  const outcome = await runHook(rule.label, rule.timeoutMs, makeContext, hook);
  if (!outcome.ok) return { block: ruleBlock(outcome.reason) };
  const r = outcome.result;
  if (r === undefined || r === "allow") return { changes: undefined };
  if (r === "block") return { block: ruleBlock(blockedText) };
  if (typeof r !== "object" || r === null)
    return { block: ruleBlock(`hook rule ${rule.label} returned ${typeof r}`) };
  const why = problem(r);
  if (why) return { block: ruleBlock(`hook rule ${rule.label} returned a bad result: ${why}`) };
  if (r.action === "block")
    return { block: ruleBlock(r.reason ? `${rule.label}: ${r.reason}` : blockedText) };
  return { changes: r };
}
