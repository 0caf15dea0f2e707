/**
 * A reference callback rule as a wheellock hook callback: the hook sends the request (or the
 * response) to the SDK over its socket and turns the reply into wheellock's hook result. It
 * runs where wheellock runs hook callbacks — in rule order, after the rule's static changes,
 * before secrets are substituted (so it sees placeholders, never values). Unlike wheellock's
 * own callbacks (a throw or a timeout blocks), a callback that fails or does not answer in
 * time changes nothing and the request goes on: the reference's fail-open, kept for the SDKs.
 */
import type {
  RequestHookContext,
  RequestHookResult,
  ResponseHookContext,
  ResponseHookResult,
} from "../net/index.js";
import { MAX_HOOK_TIMEOUT_MS } from "../net/index.js";
import { invokeCallback, type CallbackReply } from "./callback-client.js";
import { headerMap, headerRecord } from "./headers.js";
import { decodeBase64 } from "./params.js";

/** The reference waits for a callback without a `timeout_ms` forever; wheellock for this long. */
export const DEFAULT_CALLBACK_TIMEOUT_MS = 60_000;
/** wheellock's own hook deadline must never fire first (it would block the request). */
const RULE_GRACE_MS = 1000;

export interface CallbackTarget {
  readonly socketPath: string;
  readonly callbackId: string;
  readonly timeoutMs: number;
}

/** The callback's deadline and the wheellock rule's (a little later). */
export function callbackTimeouts(timeoutMs: number): { callbackMs: number; ruleMs: number } {
  const wanted = timeoutMs > 0 ? timeoutMs : DEFAULT_CALLBACK_TIMEOUT_MS;
  const callbackMs = Math.min(wanted, MAX_HOOK_TIMEOUT_MS - RULE_GRACE_MS);
  return { callbackMs, ruleMs: callbackMs + RULE_GRACE_MS };
}

type Action = "allow" | "block" | "mutate";

function action(value: unknown, mutates: boolean): Action {
  const a = typeof value === "string" ? value.trim().toLowerCase() : "";
  if (a === "block" || a === "mutate") return a;
  return mutates ? "mutate" : "allow";
}

function asObject(value: unknown): Readonly<Record<string, unknown>> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** Go's `URL.Path` is the decoded path. */
function decodedPath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** A decoded path as wheellock wants it: percent-encoded, `?` and `#` included. */
function encodedPath(path: string): string {
  return encodeURI(path).replace(/\?/g, "%3F").replace(/#/g, "%23");
}

function firstValues(query: URLSearchParams): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [k, v] of query) if (!Object.hasOwn(out, k)) out[k] = v;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The request fields of a callback line, empty ones left out (Go's `omitempty`). */
function requestFields(req: RequestHookContext | ResponseHookContext["request"]): object {
  const path = decodedPath(req.path);
  const query = firstValues(req.query);
  const headers = headerMap(req.headers);
  return {
    ...(req.host ? { host: req.host } : {}),
    ...(req.method ? { method: req.method } : {}),
    ...(path ? { path } : {}),
    ...(query ? { query } : {}),
    ...(headers ? { request_headers: headers } : {}),
  };
}

async function ask(
  target: CallbackTarget,
  phase: string,
  fields: object,
): Promise<CallbackReply | undefined> {
  try {
    return await invokeCallback(
      target.socketPath,
      { callback_id: target.callbackId, phase, ...fields },
      target.timeoutMs,
    );
  } catch {
    return undefined;
  }
}

function stringRecord(value: unknown): Record<string, string> | undefined {
  const o = asObject(value);
  if (o === undefined || !Object.values(o).every((v) => typeof v === "string")) return undefined;
  return Object.fromEntries(
    Object.entries(o)
      .map(([k, v]) => [k.trim(), v as string])
      .filter(([k]) => k !== ""),
  );
}

/** A before-phase reply as wheellock's request hook result (undefined: no change). */
export function requestResult(reply: CallbackReply | undefined): RequestHookResult {
  if (reply === undefined) return undefined;
  const req = asObject(reply.request) ?? {};
  const headers = req.headers == null ? undefined : headerRecord(req.headers);
  const query = req.query == null ? undefined : stringRecord(req.query);
  // A field Go could not decode fails the whole callback: ignored, like any failure.
  if ((req.headers != null && !headers) || (req.query != null && !query)) return undefined;
  const path = typeof req.path === "string" ? req.path.trim() : "";
  const mutates = headers !== undefined || query !== undefined || path !== "";
  const a = action(reply.action, mutates);
  if (a === "block") return "block";
  if (a !== "mutate" && !mutates) return undefined;
  return {
    ...(headers ? { headers } : {}),
    ...(query ? { query } : {}),
    ...(path !== "" ? { path: encodedPath(path) } : {}),
  };
}

function replacements(value: unknown): Array<{ find: string; replace: string }> | undefined {
  if (value == null) return [];
  if (!Array.isArray(value)) return undefined;
  const out: Array<{ find: string; replace: string }> = [];
  for (const entry of value) {
    const e = asObject(entry);
    if (!e || typeof e.find !== "string" || (e.replace != null && typeof e.replace !== "string"))
      return undefined;
    if (e.find !== "")
      out.push({ find: e.find, replace: typeof e.replace === "string" ? e.replace : "" });
  }
  return out;
}

/** An after-phase reply as wheellock's response hook result (undefined: no change). */
export function responseResult(reply: CallbackReply | undefined): ResponseHookResult {
  if (reply === undefined) return undefined;
  const resp = asObject(reply.response) ?? {};
  const headers = resp.headers == null ? undefined : headerRecord(resp.headers);
  const swaps = replacements(resp.body_replacements);
  const setBody = resp.set_body_base64;
  if (
    (resp.headers != null && !headers) ||
    !swaps ||
    (setBody != null && typeof setBody !== "string")
  )
    return undefined;
  // Undecodable base64 counts as a change that sets nothing, as in the reference.
  const body = typeof setBody === "string" ? decodeBase64(setBody) : undefined;
  const mutates = headers !== undefined || swaps.length > 0 || typeof setBody === "string";
  const a = action(reply.action, mutates);
  if (a === "block") return "block";
  if (a !== "mutate" && !mutates) return undefined;
  return {
    ...(headers ? { headers } : {}),
    ...(body ? { body } : {}),
    ...(swaps.length > 0 ? { bodyReplacements: swaps } : {}),
  };
}

export function requestCallback(
  target: CallbackTarget,
): (ctx: RequestHookContext) => Promise<RequestHookResult> {
  return async (ctx) => requestResult(await ask(target, "before", requestFields(ctx)));
}

export function responseCallback(
  target: CallbackTarget,
): (ctx: ResponseHookContext) => Promise<ResponseHookResult> {
  return async (ctx) => {
    const headers = headerMap(ctx.headers);
    const fields = {
      ...requestFields(ctx.request),
      ...(ctx.status ? { status_code: ctx.status } : {}),
      ...(headers ? { response_headers: headers } : {}),
      ...(ctx.isSse ? { is_sse: true } : {}),
    };
    return responseResult(await ask(target, "after", fields));
  };
}
