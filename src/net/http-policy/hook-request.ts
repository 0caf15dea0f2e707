import type {
  BodyAccess,
  HeaderList,
  HttpRequestHead,
  RequestVerdict,
} from "../intercept/contract.js";
import {
  copyHeaders,
  getHeader,
  headerNameProblem,
  headerValueProblem,
  isFramingHeader,
  type HeaderSide,
} from "./headers.js";
import { queryParams, splitTarget } from "./target.js";
import type { HookRequest, HookResultCommon } from "./types.js";

/** Bodies handed to callbacks or rewritten whole are buffered up to this. */
export const MAX_BUFFERED_BODY_BYTES = 16 * 1024 * 1024;

export function hookRequest(head: HttpRequestHead): HookRequest {
  const { path, query } = splitTarget(head.target);
  const headers = copyHeaders(head.headers);
  return {
    method: head.method,
    scheme: head.scheme,
    host: head.host,
    port: head.port,
    path,
    query: queryParams(query),
    headers,
    header: (name) => getHeader(headers, name),
  };
}

/**
 * One bounded read of a body shared by every callback of a message (the proxy's BodyAccess
 * may not be readable twice); `replace` swaps in a callback's new body for later callbacks.
 */
export class BodyReader {
  private cached: Promise<Buffer> | undefined;

  constructor(private readonly access: BodyAccess) {}

  read = async (limitBytes = MAX_BUFFERED_BODY_BYTES): Promise<Buffer> => {
    this.cached ??= this.access.readBody(MAX_BUFFERED_BODY_BYTES);
    const body = await this.cached;
    if (body.length > Math.min(limitBytes, MAX_BUFFERED_BODY_BYTES))
      throw new Error(`body is larger than ${limitBytes} bytes`);
    return body;
  };

  replace(body: Buffer): void {
    this.cached = Promise.resolve(body);
  }
}

/** Callback-supplied headers, checked at run time: the first problem, or undefined. */
export function headerRecordProblem(
  record: unknown,
  side: HeaderSide,
  field: string,
  /** Full replacements may name framing headers: they are ignored, not refused. */
  fullReplacement = false,
): string | undefined {
  if (typeof record !== "object" || record === null || Array.isArray(record))
    return `${field} is not an object`;
  for (const [name, value] of Object.entries(record)) {
    const nameWhy = headerNameProblem(name, side);
    const ignored = fullReplacement && isFramingHeader(name, side);
    const why = (ignored ? undefined : nameWhy) ?? headerValueProblem(name, value);
    if (why) return `${field}: ${why}`;
  }
  return undefined;
}

export function stringListProblem(list: unknown, field: string): string | undefined {
  if (!Array.isArray(list) || !list.every((x) => typeof x === "string"))
    return `${field} is not an array of strings`;
  return undefined;
}

export function stringRecordProblem(record: unknown, field: string): string | undefined {
  if (typeof record !== "object" || record === null || Array.isArray(record))
    return `${field} is not an object`;
  if (!Object.values(record).every((v) => typeof v === "string"))
    return `${field} has values that are not strings`;
  return undefined;
}

export function toBuffer(body: Buffer | string): Buffer {
  return typeof body === "string" ? Buffer.from(body) : body;
}

export function headerRecordToList(record: Record<string, string>): HeaderList {
  return Object.entries(record);
}

export type RuleBlock = Extract<RequestVerdict, { action: "block" }>;

export function ruleBlock(reason: string): RuleBlock {
  return { action: "block", code: "blocked_by_rule", reason };
}

/** Runs `f` on `v` when `v` is present: the checks of a callback result read as one chain. */
export function check<T>(v: T | undefined, f: (v: T) => string | undefined): string | undefined {
  return v === undefined ? undefined : f(v);
}

/** Why the fields both phases share cannot be applied, or undefined when they can. */
export function commonResultProblem(r: HookResultCommon, side: HeaderSide): string | undefined {
  return (
    check(r.action, (a) => (a === "allow" || a === "block" ? undefined : `action ${String(a)}`)) ??
    check(r.headers, (h) => headerRecordProblem(h, side, "headers", true)) ??
    check(r.setHeaders, (h) => headerRecordProblem(h, side, "setHeaders")) ??
    check(r.deleteHeaders, (l) => stringListProblem(l, "deleteHeaders")) ??
    check(r.body, (b) =>
      typeof b === "string" || Buffer.isBuffer(b) ? undefined : "body is not a string or Buffer",
    )
  );
}
