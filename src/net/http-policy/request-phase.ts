/**
 * The before phase: rules in order, each one's static changes then its callback (reference
 * order). Runs on the guest's request with placeholders in it; secrets come after.
 */
import type { BodyAccess, HttpRequestHead, RequestVerdict } from "../intercept/contract.js";
import { deleteHeader, replaceHeaders, setHeader } from "./headers.js";
import {
  BodyReader,
  check,
  commonResultProblem,
  headerRecordProblem,
  headerRecordToList,
  hookRequest,
  ruleBlock,
  stringListProblem,
  stringRecordProblem,
  toBuffer,
} from "./hook-request.js";
import { runRuleHook } from "./hook-runner.js";
import { ruleMatches, type CompiledRequestRule } from "./rules.js";
import {
  deleteQueryParam,
  encodeQuery,
  joinTarget,
  pathProblem,
  setQueryParam,
  splitTarget,
} from "./target.js";
import type { DirectResponse, RequestHookContext, RequestHookResult } from "./types.js";

interface Changes {
  headers?: Record<string, string>;
  setHeaders?: Record<string, string> | Iterable<[string, string]>;
  deleteHeaders?: Iterable<string>;
  query?: Record<string, string>;
  setQuery?: Record<string, string> | Iterable<[string, string]>;
  deleteQuery?: Iterable<string>;
  path?: string;
}

function entries(
  v: Record<string, string> | Iterable<[string, string]> | undefined,
): Iterable<[string, string]> {
  if (v === undefined) return [];
  return Symbol.iterator in v ? (v as Iterable<[string, string]>) : Object.entries(v);
}

function applyChanges(request: HttpRequestHead, c: Changes): HttpRequestHead {
  let headers = request.headers;
  if (c.headers) headers = replaceHeaders(headers, c.headers, "request");
  for (const [n, v] of entries(c.setHeaders)) headers = setHeader(headers, n, v);
  for (const n of c.deleteHeaders ?? []) headers = deleteHeader(headers, n);
  let { path, query } = splitTarget(request.target);
  if (c.query) query = encodeQuery(c.query);
  for (const [k, v] of entries(c.setQuery)) query = setQueryParam(query, k, v);
  for (const k of c.deleteQuery ?? []) query = deleteQueryParam(query, k);
  if (c.path !== undefined) path = c.path;
  return { ...request, headers, target: joinTarget({ path, query }) };
}

/** Why a callback's result cannot be applied, or undefined when it can. */
function resultProblem(r: Exclude<RequestHookResult, void | string>): string | undefined {
  return (
    commonResultProblem(r, "request") ??
    check(r.query, (q) => stringRecordProblem(q, "query")) ??
    check(r.setQuery, (q) => stringRecordProblem(q, "setQuery")) ??
    check(r.deleteQuery, (l) => stringListProblem(l, "deleteQuery")) ??
    check(r.path, pathProblem) ??
    check(r.respond, respondProblem)
  );
}

function respondProblem(d: DirectResponse): string | undefined {
  if (typeof d !== "object" || d === null) return "respond is not an object";
  if (!Number.isInteger(d.status) || d.status < 200 || d.status > 599)
    return `respond.status ${String(d.status)}`;
  if (d.body !== undefined && typeof d.body !== "string" && !Buffer.isBuffer(d.body))
    return "respond.body is not a string or Buffer";
  if (d.headers === undefined) return undefined;
  return headerRecordProblem(d.headers, "response", "respond.headers");
}

export async function runRequestRules(
  rules: readonly CompiledRequestRule[],
  guestRequest: HttpRequestHead,
  bodyAccess: BodyAccess,
): Promise<RequestVerdict> {
  let request = guestRequest;
  let newBody: Buffer | undefined;
  const reader = new BodyReader(bodyAccess);
  for (const rule of rules) {
    if (!ruleMatches(rule, request)) continue;
    if (rule.action === "block") return ruleBlock(`blocked by hook rule ${rule.label}`);
    request = applyChanges(request, {
      setHeaders: rule.setHeaders,
      deleteHeaders: rule.deleteHeaders,
      setQuery: rule.setQuery,
      deleteQuery: rule.deleteQuery,
      path: rule.rewritePath,
    });
    if (!rule.hook) continue;
    const current = request;
    const verdict = await runRuleHook(
      rule,
      (signal): RequestHookContext => ({
        ...hookRequest(current),
        rule: rule.label,
        body: reader.read,
        signal,
      }),
      rule.hook,
      resultProblem,
      `blocked by hook rule ${rule.label}`,
    );
    if ("block" in verdict) return verdict.block;
    const r = verdict.changes;
    if (r === undefined) continue;
    if (r.respond) {
      return {
        action: "respond",
        response: {
          status: r.respond.status,
          headers: headerRecordToList(r.respond.headers ?? {}),
        },
        body: toBuffer(r.respond.body ?? ""),
      };
    }
    request = applyChanges(request, r);
    if (r.body !== undefined) {
      newBody = toBuffer(r.body);
      reader.replace(newBody);
    }
  }
  return newBody === undefined
    ? { action: "forward", request }
    : { action: "forward", request, body: newBody };
}
