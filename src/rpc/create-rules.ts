/**
 * `network.interception.rules` (the reference's NetworkHookRule) as wheellock hook rules, with
 * the reference's normalisation (`pkg/policy/network_hooks.go`): phase is `after` or else
 * `before`; action `block`, `mutate` or else `allow`; only the phase's own mutation fields
 * count; a block rule blocks before any change or callback; a rule with nothing to do is
 * dropped. A rule with a `callback_id` (and a `callback_socket` to call) gets a callback that
 * asks the client over its Unix socket (callback-hooks.ts).
 */
import type { NetworkHookRule } from "../config/index.js";
import { requestCallback, responseCallback, callbackTimeouts } from "./callback-hooks.js";
import { canonicalHeaderKey } from "./headers.js";
import {
  numberField,
  objectField,
  stringField,
  stringListField,
  stringMapField,
  type Params,
} from "./params.js";
import { RpcCode, RpcError } from "./wire.js";

function invalid(message: string): RpcError {
  return new RpcError(RpcCode.InvalidParams, message);
}

function trimmedList(list: string[], transform: (s: string) => string = (s) => s): string[] {
  return [...new Set(list.map((s) => transform(s.trim())).filter((s) => s !== ""))];
}

function headerSet(map: Record<string, string>): Record<string, string> | undefined {
  const entries = Object.entries(map)
    .map(([k, v]): [string, string] => [canonicalHeaderKey(k.trim()), v])
    .filter(([k]) => k !== "");
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

function stringSet(map: Record<string, string>): Record<string, string> | undefined {
  const entries = Object.entries(map)
    .map(([k, v]): [string, string] => [k.trim(), v])
    .filter(([k]) => k !== "");
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

function nonEmpty<T>(list: T[]): T[] | undefined {
  return list.length > 0 ? list : undefined;
}

function bodyReplacements(r: Params, where: string): Array<{ find: string; replace: string }> {
  const value = r.body_replacements;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid(`${where}.body_replacements must be an array`);
  return value
    .map((entry: unknown, i) => {
      const e = objectField({ e: entry }, "e", `${where}.body_replacements[${i}]`) ?? {};
      return { find: stringField(e, "find"), replace: stringField(e, "replace") };
    })
    .filter((b) => b.find !== "");
}

/** The phase's own changes, dropped when empty (so their absence means "no mutation"). */
function mutations(r: Params, phase: "before" | "after", where: string): Record<string, unknown> {
  const out: Record<string, unknown> =
    phase === "before"
      ? {
          setHeaders: headerSet(stringMapField(r, "set_headers", `${where}.set_headers`)),
          deleteHeaders: nonEmpty(
            trimmedList(
              stringListField(r, "delete_headers", `${where}.delete_headers`),
              canonicalHeaderKey,
            ),
          ),
          setQuery: stringSet(stringMapField(r, "set_query", `${where}.set_query`)),
          deleteQuery: nonEmpty(
            trimmedList(stringListField(r, "delete_query", `${where}.delete_query`)),
          ),
          rewritePath: stringField(r, "rewrite_path", `${where}.rewrite_path`).trim() || undefined,
        }
      : {
          setResponseHeaders: headerSet(
            stringMapField(r, "set_response_headers", `${where}.set_response_headers`),
          ),
          deleteResponseHeaders: nonEmpty(
            trimmedList(
              stringListField(r, "delete_response_headers", `${where}.delete_response_headers`),
              canonicalHeaderKey,
            ),
          ),
          bodyReplacements: nonEmpty(bodyReplacements(r, where)),
        };
  for (const key of Object.keys(out)) if (out[key] === undefined) delete out[key];
  return out;
}

function mapRule(raw: unknown, index: number, socket: string): NetworkHookRule | undefined {
  const where = `network.interception.rules[${index}]`;
  const r = objectField({ r: raw }, "r", where);
  if (r === undefined) throw invalid(`${where} must be a JSON object`);
  const phase =
    stringField(r, "phase", `${where}.phase`).trim().toLowerCase() === "after" ? "after" : "before";
  const action = stringField(r, "action", `${where}.action`).trim().toLowerCase();
  const name = stringField(r, "name", `${where}.name`);
  const hosts = trimmedList(stringListField(r, "hosts", `${where}.hosts`));
  const methods = trimmedList(stringListField(r, "methods", `${where}.methods`), (m) =>
    m.toUpperCase(),
  );
  const path = stringField(r, "path", `${where}.path`).trim();
  const timeoutMs = numberField(r, "timeout_ms", { integer: true, where: `${where}.timeout_ms` });
  const match = {
    ...(name !== "" ? { name } : {}),
    phase,
    ...(hosts.length > 0 ? { hosts } : {}),
    ...(methods.length > 0 ? { methods } : {}),
    ...(path !== "" ? { path } : {}),
  };
  // The reference blocks before applying the rule's changes or calling its callback.
  if (action === "block") return { ...match, action: "block" } as NetworkHookRule;
  const changes = mutations(r, phase, where);
  const callbackId = stringField(r, "callback_id", `${where}.callback_id`).trim();
  // Without a socket to call, the reference skips the callback too.
  const hasCallback = callbackId !== "" && socket !== "";
  if (Object.keys(changes).length === 0 && !hasCallback) return undefined;
  if (!hasCallback) return { ...match, ...changes } as NetworkHookRule;
  const timeouts = callbackTimeouts(timeoutMs);
  const target = { socketPath: socket, callbackId, timeoutMs: timeouts.callbackMs };
  return {
    ...match,
    ...changes,
    timeoutMs: timeouts.ruleMs,
    hook: phase === "before" ? requestCallback(target) : responseCallback(target),
  } as NetworkHookRule;
}

/** The rules that do something, in order. */
export function mapNetworkRules(rules: unknown, callbackSocket: string): NetworkHookRule[] {
  if (rules === undefined || rules === null) return [];
  if (!Array.isArray(rules)) throw invalid("network.interception.rules must be an array");
  return rules
    .map((rule: unknown, i) => mapRule(rule, i, callbackSocket))
    .filter((rule): rule is NetworkHookRule => rule !== undefined);
}
