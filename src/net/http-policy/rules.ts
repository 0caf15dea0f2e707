/**
 * Hook rules compiled once: every field checked (a bad rule is an ErrInvalidConfig naming the
 * rule and the field), globs compiled, header names validated, so matching and applying per
 * request does no parsing and cannot fail on configuration.
 */
import { ErrInvalidConfig } from "../../errors.js";
import type { HttpRequestHead } from "../intercept/contract.js";
import { compileHostPattern, type HostPattern } from "../policy/index.js";
import { toByteReplacements, type ByteReplacement } from "./bytes.js";
import { headerNameProblem, headerValueProblem, type HeaderSide } from "./headers.js";
import { compilePathGlob, type PathGlob } from "../../util/index.js";
import { pathForms, pathProblem, splitTarget } from "./target.js";
import type { HookRule, RequestHookRule, ResponseHookRule } from "./types.js";

export const DEFAULT_HOOK_TIMEOUT_MS = 5000;
export const MAX_HOOK_TIMEOUT_MS = 10 * 60 * 1000;
const METHOD_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const COMMON_FIELDS = ["name", "phase", "action", "hosts", "methods", "path", "timeoutMs", "hook"];
const BEFORE_FIELDS = ["setHeaders", "deleteHeaders", "setQuery", "deleteQuery", "rewritePath"];
const AFTER_FIELDS = ["setResponseHeaders", "deleteResponseHeaders", "bodyReplacements"];

interface CompiledCommon {
  /** `"name"` or `#N`, for errors and block reasons. */
  readonly label: string;
  readonly action: "allow" | "block" | "mutate";
  readonly hosts: readonly HostPattern[];
  readonly methods: ReadonlySet<string> | undefined;
  readonly path: PathGlob | undefined;
  readonly timeoutMs: number;
}

export interface CompiledRequestRule extends CompiledCommon {
  readonly phase: "before";
  readonly setHeaders: ReadonlyArray<[string, string]>;
  readonly deleteHeaders: readonly string[];
  readonly setQuery: ReadonlyArray<[string, string]>;
  readonly deleteQuery: readonly string[];
  readonly rewritePath: string | undefined;
  readonly hook: RequestHookRule["hook"];
}

export interface CompiledResponseRule extends CompiledCommon {
  readonly phase: "after";
  readonly setHeaders: ReadonlyArray<[string, string]>;
  readonly deleteHeaders: readonly string[];
  readonly replacements: readonly ByteReplacement[];
  readonly hook: ResponseHookRule["hook"];
}

export type CompiledRule = CompiledRequestRule | CompiledResponseRule;

export function ruleMatches(rule: CompiledCommon, request: HttpRequestHead): boolean {
  if (rule.hosts.length > 0 && !rule.hosts.some((h) => h.matches(request.host, request.port)))
    return false;
  if (rule.methods && !rule.methods.has(request.method.toUpperCase())) return false;
  const re = rule.path;
  if (re && !pathForms(splitTarget(request.target).path).some((p) => re.test(p))) return false;
  return true;
}

export function compileRules(rules: readonly HookRule[]): CompiledRule[] {
  if (!Array.isArray(rules)) throw new ErrInvalidConfig("hook rules must be an array");
  return rules.map((rule, i) => compileRule(rule, i));
}

function compileRule(rule: HookRule, index: number): CompiledRule {
  if (typeof rule !== "object" || rule === null)
    throw new ErrInvalidConfig(`hook rule #${index + 1} is not an object`);
  const label =
    typeof rule.name === "string" && rule.name !== "" ? `"${rule.name}"` : `#${index + 1}`;
  const fail = (why: string): never => {
    throw new ErrInvalidConfig(`hook rule ${label}: ${why}`);
  };
  if (rule.name !== undefined && typeof rule.name !== "string") fail("name must be a string");
  const phase = rule.phase ?? "before";
  if (phase !== "before" && phase !== "after")
    fail(`phase must be "before" or "after", not ${JSON.stringify(phase)}`);
  const own = phase === "before" ? BEFORE_FIELDS : AFTER_FIELDS;
  const other = phase === "before" ? AFTER_FIELDS : BEFORE_FIELDS;
  for (const key of Object.keys(rule)) {
    if (other.includes(key))
      fail(`${key} needs phase "${phase === "before" ? "after" : "before"}"`);
    if (!own.includes(key) && !COMMON_FIELDS.includes(key)) fail(`unknown field ${key}`);
  }
  const declared = rule.action ?? "allow";
  if (!["allow", "block", "mutate"].includes(declared))
    fail(`action must be "allow", "block" or "mutate", not ${JSON.stringify(declared)}`);
  if (rule.hook !== undefined && typeof rule.hook !== "function") fail("hook must be a function");
  if (rule.hook && declared === "block")
    fail('callback hooks cannot set action "block" (the callback returns the action)');
  const hasChanges = own.some((k) => (rule as unknown as Record<string, unknown>)[k] !== undefined);
  if (declared === "block" && hasChanges) fail("a block rule cannot also change the message");
  if (declared !== "block" && !hasChanges && !rule.hook)
    fail('does nothing: give action "block", a change or a hook');
  const common: CompiledCommon = {
    label,
    action: declared === "block" ? "block" : hasChanges ? "mutate" : "allow",
    hosts: stringList(rule.hosts, "hosts", fail).map((h) => {
      try {
        return compileHostPattern(h);
      } catch (err) {
        return fail((err as Error).message.replace(/^invalid configuration: /, ""));
      }
    }),
    methods: methodSet(rule.methods, fail),
    path: pathGlob(rule.path, fail),
    timeoutMs: timeout(rule.timeoutMs, fail),
  };
  if (rule.phase === "after") {
    return {
      ...common,
      phase: "after",
      setHeaders: headerMap(rule.setResponseHeaders, "setResponseHeaders", "response", fail),
      deleteHeaders: headerNames(
        rule.deleteResponseHeaders,
        "deleteResponseHeaders",
        "response",
        fail,
      ),
      replacements: replacements(rule.bodyReplacements, fail),
      hook: rule.hook,
    };
  }
  const r = rule as RequestHookRule;
  if (r.rewritePath !== undefined) {
    const why = pathProblem(r.rewritePath);
    if (why) fail(`rewritePath: ${why}`);
  }
  return {
    ...common,
    phase: "before",
    setHeaders: headerMap(r.setHeaders, "setHeaders", "request", fail),
    deleteHeaders: headerNames(r.deleteHeaders, "deleteHeaders", "request", fail),
    setQuery: queryMap(r.setQuery, fail),
    deleteQuery: stringList(r.deleteQuery, "deleteQuery", fail),
    rewritePath: r.rewritePath,
    hook: r.hook,
  };
}

type Fail = (why: string) => never;

function stringList(value: unknown, field: string, fail: Fail): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string"))
    fail(`${field} must be an array of strings`);
  return [...new Set(value as string[])];
}

function stringRecord(value: unknown, field: string, fail: Fail): Array<[string, string]> {
  if (value === undefined) return [];
  if (typeof value !== "object" || value === null || Array.isArray(value))
    fail(`${field} must be an object of strings`);
  const entries = Object.entries(value as object);
  if (!entries.every(([, v]) => typeof v === "string")) fail(`${field} values must be strings`);
  return entries as Array<[string, string]>;
}

function headerMap(value: unknown, field: string, side: HeaderSide, fail: Fail) {
  const entries = stringRecord(value, field, fail);
  for (const [name, v] of entries) {
    const why = headerNameProblem(name, side) ?? headerValueProblem(name, v);
    if (why) fail(`${field}: ${why}`);
  }
  return entries;
}

function headerNames(value: unknown, field: string, side: HeaderSide, fail: Fail): string[] {
  const names = stringList(value, field, fail);
  for (const name of names) {
    const why = headerNameProblem(name, side);
    if (why) fail(`${field}: ${why}`);
  }
  return names;
}

function queryMap(value: unknown, fail: Fail): Array<[string, string]> {
  const entries = stringRecord(value, "setQuery", fail);
  if (entries.some(([k]) => k === "")) fail("setQuery: empty parameter name");
  return entries;
}

function methodSet(value: unknown, fail: Fail): Set<string> | undefined {
  const methods = stringList(value, "methods", fail);
  for (const m of methods) if (!METHOD_RE.test(m)) fail(`bad method ${JSON.stringify(m)}`);
  return methods.length === 0 ? undefined : new Set(methods.map((m) => m.toUpperCase()));
}

function pathGlob(value: unknown, fail: Fail): PathGlob | undefined {
  if (value === undefined || value === "") return undefined;
  if (typeof value !== "string") return fail("path must be a string");
  try {
    return compilePathGlob(value);
  } catch (err) {
    return fail((err as Error).message);
  }
}

function timeout(value: unknown, fail: Fail): number {
  if (value === undefined) return DEFAULT_HOOK_TIMEOUT_MS;
  if (
    typeof value !== "number" ||
    !Number.isInteger(value) ||
    value < 1 ||
    value > MAX_HOOK_TIMEOUT_MS
  )
    fail(`timeoutMs must be an integer from 1 to ${MAX_HOOK_TIMEOUT_MS}`);
  return value as number;
}

function replacements(value: unknown, fail: Fail): ByteReplacement[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) return fail("bodyReplacements must be an array");
  for (const r of value as unknown[]) {
    const rec = r as { find?: unknown; replace?: unknown } | null;
    if (typeof rec !== "object" || rec === null || typeof rec.find !== "string")
      fail("bodyReplacements entries need a string find");
    if (rec?.find === "") fail("bodyReplacements: empty find");
    if (rec?.replace !== undefined && typeof rec.replace !== "string")
      fail("bodyReplacements: replace must be a string");
  }
  return toByteReplacements(value as Array<{ find: string; replace?: string }>);
}
