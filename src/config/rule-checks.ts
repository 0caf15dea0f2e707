/**
 * Hook rules and secret values as the plan keeps them. The rules' semantics belong to the
 * layers that run them (src/vfs/hooks, src/net/http-policy), which export their checkers; the
 * plan runs them here, once, so a bad rule is a config error before anything starts.
 */
import { checkHookRules } from "../net/index.js";
import { compileFileHooks, type FileHookRule } from "../vfs/index.js";
import { ErrInvalidConfig } from "../errors.js";
import type { NetworkHookRule } from "./hook-rule.js";
import type { SecretOption } from "./options.js";

export function checkFileHooks(rules: readonly FileHookRule[] | undefined): FileHookRule[] {
  if (rules === undefined) return [];
  compileFileHooks(rules);
  return [...rules];
}

export function checkNetworkHooks(
  rules: readonly NetworkHookRule[] | undefined,
): NetworkHookRule[] {
  if (rules === undefined) return [];
  if (!Array.isArray(rules)) throw new ErrInvalidConfig("networkHooks must be an array of rules");
  checkHookRules(rules);
  return [...rules];
}

/** Name -> value of each secret (already checked with the rest of the network options). */
export function secretValues(
  secrets: Readonly<Record<string, SecretOption>> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(secrets ?? {})) out[name] = spec.value;
  return out;
}
