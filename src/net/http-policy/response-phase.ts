/**
 * The after phase: rules in order (block, header changes, replacements collected, callback),
 * then the body decision of the reference: a new body with every replacement applied, or a
 * streaming `data:` rewrite for event streams, or the whole body rewritten (bounded).
 */
import type {
  BodyAccess,
  HttpRequestHead,
  HttpResponseHead,
  ResponseVerdict,
} from "../intercept/contract.js";
import { applyReplacements, toByteReplacements, type ByteReplacement } from "./bytes.js";
import { contentCodings, decodeBody } from "./content-encoding.js";
import { deleteHeader, getHeader, replaceHeaders, setHeader } from "./headers.js";
import {
  BodyReader,
  MAX_BUFFERED_BODY_BYTES,
  check,
  commonResultProblem,
  hookRequest,
  ruleBlock,
  toBuffer,
} from "./hook-request.js";
import { runRuleHook } from "./hook-runner.js";
import { ruleMatches, type CompiledResponseRule } from "./rules.js";
import { sseDataTransform } from "./sse-transform.js";
import type { BodyReplacement, ResponseHookContext, ResponseHookResult } from "./types.js";

export function isEventStream(headers: HttpResponseHead["headers"]): boolean {
  return (getHeader(headers, "content-type") ?? "")
    .trim()
    .toLowerCase()
    .startsWith("text/event-stream");
}

function resultProblem(r: Exclude<ResponseHookResult, void | string>): string | undefined {
  return (
    commonResultProblem(r, "response") ??
    check(r.status, (s) =>
      Number.isInteger(s) && s >= 200 && s <= 599 ? undefined : `status ${String(s)}`,
    ) ??
    check(r.bodyReplacements, replacementsProblem)
  );
}

function replacementsProblem(list: BodyReplacement[]): string | undefined {
  if (!Array.isArray(list)) return "bodyReplacements is not an array";
  const ok = list.every(
    (r) =>
      typeof r === "object" &&
      r !== null &&
      typeof r.find === "string" &&
      (r.replace === undefined || typeof r.replace === "string"),
  );
  return ok ? undefined : "bodyReplacements entries need string find/replace";
}

export async function runResponseRules(
  rules: readonly CompiledResponseRule[],
  request: HttpRequestHead,
  /** The request with placeholders instead of real values, for callbacks. */
  callbackRequest: HttpRequestHead,
  upstream: HttpResponseHead,
  bodyAccess: BodyAccess,
): Promise<ResponseVerdict> {
  let response: HttpResponseHead = { ...upstream };
  const replacements: ByteReplacement[] = [];
  let newBody: Buffer | undefined;
  const codings = contentCodings(getHeader(upstream.headers, "content-encoding"));
  // Callbacks and replacements see the body decoded; if upstream ignored our
  // `Accept-Encoding: identity`, we then send it decoded too.
  const reader = new BodyReader({
    readBody: async (limit) => decodeBody(await bodyAccess.readBody(limit), codings),
  });
  for (const rule of rules) {
    if (!ruleMatches(rule, request)) continue;
    if (rule.action === "block") return ruleBlock(`response blocked by hook rule ${rule.label}`);
    for (const [n, v] of rule.setHeaders) response.headers = setHeader(response.headers, n, v);
    for (const n of rule.deleteHeaders) response.headers = deleteHeader(response.headers, n);
    replacements.push(...rule.replacements);
    if (!rule.hook) continue;
    const current = response;
    const verdict = await runRuleHook(
      rule,
      (signal): ResponseHookContext => ({
        rule: rule.label,
        request: hookRequest(callbackRequest),
        status: current.status,
        headers: current.headers.map(([n, v]) => [n, v]),
        header: (name) => getHeader(current.headers, name),
        isSse: isEventStream(current.headers),
        body: reader.read,
        signal,
      }),
      rule.hook,
      resultProblem,
      `response blocked by hook rule ${rule.label}`,
    );
    if ("block" in verdict) return verdict.block;
    const r = verdict.changes;
    if (r === undefined) continue;
    response = applyResponseChanges(response, r);
    if (r.body !== undefined) newBody = toBuffer(r.body);
    if (r.bodyReplacements) replacements.push(...toByteReplacements(r.bodyReplacements));
  }
  return finishBody(response, replacements, newBody, codings, reader);
}

function applyResponseChanges(
  response: HttpResponseHead,
  r: Exclude<ResponseHookResult, void | string>,
): HttpResponseHead {
  let headers = response.headers;
  if (r.headers) headers = replaceHeaders(headers, r.headers, "response");
  for (const [n, v] of Object.entries(r.setHeaders ?? {})) headers = setHeader(headers, n, v);
  for (const n of r.deleteHeaders ?? []) headers = deleteHeader(headers, n);
  return { ...response, status: r.status ?? response.status, headers };
}

async function finishBody(
  response: HttpResponseHead,
  replacements: ByteReplacement[],
  newBody: Buffer | undefined,
  codings: string[],
  reader: BodyReader,
): Promise<ResponseVerdict> {
  // Bodies we hand over are decoded: the upstream's coding no longer describes them.
  const plain =
    codings.length === 0
      ? response
      : { ...response, headers: deleteHeader(response.headers, "content-encoding") };
  if (newBody !== undefined)
    return { action: "forward", response: plain, body: applyReplacements(newBody, replacements) };
  if (replacements.length === 0) {
    // A callback that read a coded body leaves it as upstream sent it.
    return { action: "forward", response };
  }
  if (isEventStream(response.headers)) {
    if (codings.length > 0)
      return ruleBlock("cannot rewrite an event stream with a Content-Encoding; response blocked");
    return { action: "forward", response, transformBody: () => sseDataTransform(replacements) };
  }
  let body: Buffer;
  try {
    body = await reader.read(MAX_BUFFERED_BODY_BYTES);
  } catch (err) {
    return ruleBlock(
      `response body could not be rewritten (${(err as Error).message}; limit ${MAX_BUFFERED_BODY_BYTES} bytes)`,
    );
  }
  return { action: "forward", response: plain, body: applyReplacements(body, replacements) };
}
