/**
 * Reading request params the way the reference's Go decoder does: a missing `params` fails,
 * `null` is an empty object, absent or null fields take their zero value, unknown fields are
 * ignored, and a wrongly typed field is an InvalidParams error naming it. Base64 is the
 * standard alphabet with padding, like Go's `StdEncoding`.
 */
import { RpcCode, RpcError } from "./wire.js";

export type Params = Readonly<Record<string, unknown>>;

function invalid(message: string): RpcError {
  return new RpcError(RpcCode.InvalidParams, message);
}

/** The params object; `optional` methods treat a missing `params` as `{}`. */
export function objectParams(params: unknown, optional = false): Params {
  if (params === undefined) {
    if (optional) return {};
    throw invalid("unexpected end of JSON input");
  }
  if (params === null) return {};
  if (typeof params !== "object" || Array.isArray(params))
    throw invalid("params must be a JSON object");
  return params as Params;
}

/** An object-valued field (absent or null: undefined). */
export function objectField(p: Params, key: string, where = key): Params | undefined {
  const v = p[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) throw invalid(`${where} must be a JSON object`);
  return v as Params;
}

export function stringField(p: Params, key: string, where = key): string {
  const v = p[key];
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw invalid(`${where} must be a string`);
  return v;
}

export function booleanField(p: Params, key: string, where = key): boolean {
  const v = p[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw invalid(`${where} must be a boolean`);
  return v;
}

/** A number (absent or null: 0), optionally a whole number in [0, max]. */
export function numberField(
  p: Params,
  key: string,
  opts: { integer?: boolean; max?: number; where?: string } = {},
): number {
  const where = opts.where ?? key;
  const v = p[key];
  if (v === undefined || v === null) return 0;
  if (typeof v !== "number" || !Number.isFinite(v)) throw invalid(`${where} must be a number`);
  if (opts.integer && !Number.isInteger(v)) throw invalid(`${where} must be a whole number`);
  if (opts.max !== undefined && (v < 0 || v > opts.max))
    throw invalid(`${where} must be between 0 and ${opts.max}`);
  return v;
}

export function stringListField(p: Params, key: string, where = key): string[] {
  const v = p[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
    throw invalid(`${where} must be an array of strings`);
  return v as string[];
}

export function stringMapField(p: Params, key: string, where = key): Record<string, string> {
  const v = objectField(p, key, where);
  if (v === undefined) return {};
  for (const [k, x] of Object.entries(v))
    if (typeof x !== "string") throw invalid(`${where}.${k} must be a string`);
  return { ...(v as Record<string, string>) };
}

/**
 * Standard base64 with padding (Go skips CR and LF in it too); undefined when it is not that.
 * Node's decoder skips characters it does not know and accepts the URL-safe alphabet, so the
 * check is: no URL-safe characters, whole quads, and every quad decoded.
 */
export function decodeBase64(text: string): Buffer | undefined {
  const clean = text.includes("\n") || text.includes("\r") ? text.replace(/[\r\n]/g, "") : text;
  if (clean.length % 4 !== 0 || clean.includes("-") || clean.includes("_")) return undefined;
  const pad = clean.endsWith("==") ? 2 : clean.endsWith("=") ? 1 : 0;
  const bytes = Buffer.from(clean, "base64");
  return bytes.length === (clean.length / 4) * 3 - pad ? bytes : undefined;
}

export const U16_MAX = 0xffff;
export const U32_MAX = 0xffffffff;
