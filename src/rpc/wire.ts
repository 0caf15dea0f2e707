/**
 * The JSON-RPC 2.0 envelope as matchlock's `rpc` speaks it (reference/matchlock-rpc.md §2-§4):
 * one compact JSON object per line, integer ids, responses and request-scoped notifications,
 * the reference's error codes. Output is ASCII-only: every code point >= U+0080 is escaped, so
 * the TypeScript SDK (which decodes each pipe chunk on its own) and Python's locale-decoded
 * text pipes never see a multi-byte character cut in two.
 */

/** The reference's error codes (`pkg/rpc/handler.go`); clients branch on them. */
export const RpcCode = {
  Parse: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  Internal: -32603,
  VmFailed: -32000,
  ExecFailed: -32001,
  FileFailed: -32002,
  Cancelled: -32003,
} as const;

export type RpcErrorCode = (typeof RpcCode)[keyof typeof RpcCode];

/** A failure with the code the client gets. */
export class RpcError extends Error {
  constructor(
    readonly code: RpcErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "RpcError";
  }
}

/** A request id; `undefined` when the request had none (its reply then has no `id` key). */
export type RequestId = number | undefined;

export interface RpcRequest {
  readonly method: string;
  /** Raw params; `undefined` when the key was absent (Go: a nil RawMessage). */
  readonly params: unknown;
  readonly id: RequestId;
}

/** Go decodes ids into `*uint64`; JavaScript numbers are exact up to 2^53-1, so that is the bound. */
function isRequestId(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/**
 * One line as a request, or undefined when it is not one (the caller answers -32700 without an
 * id, as the reference does for any line its decoder refuses: bad JSON, a non-object, a string,
 * negative or fractional id, a non-string method). `jsonrpc` is not checked, unknown keys are
 * ignored, and `"id": null` means no id.
 */
export function parseRequest(line: string): RpcRequest | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const { method = "", params, id = null } = value as Record<string, unknown>;
  if (typeof method !== "string") return undefined;
  if (id !== null && !isRequestId(id)) return undefined;
  return { method, params, id: id ?? undefined };
}

const NON_ASCII = /[\u0080-\uffff]/g;

function escapeCodeUnit(ch: string): string {
  return `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/** Compact JSON with every non-ASCII code unit escaped (surrogate pairs as two escapes), plus `\n`. */
export function encodeLine(value: unknown): string {
  const json = JSON.stringify(value);
  // Nearly every line is ASCII already (byte payloads are base64): test before replacing.
  NON_ASCII.lastIndex = 0;
  return `${NON_ASCII.test(json) ? json.replace(NON_ASCII, escapeCodeUnit) : json}\n`;
}

export function resultMessage(id: RequestId, result: object): object {
  return id === undefined ? { jsonrpc: "2.0", result } : { jsonrpc: "2.0", result, id };
}

export function errorMessage(id: RequestId, code: RpcErrorCode, message: string): object {
  const error = { code, message };
  return id === undefined ? { jsonrpc: "2.0", error } : { jsonrpc: "2.0", error, id };
}

/**
 * A notification tied to a request: the request id goes in `params.id` (null when the request
 * had none), never at the top level, which is how clients tell it from a response.
 */
export function requestNotification(
  method: string,
  id: RequestId,
  extra: Record<string, unknown> = {},
): object {
  return { jsonrpc: "2.0", method, params: { ...extra, id: id ?? null } };
}

export function notification(method: string, params: object): object {
  return { jsonrpc: "2.0", method, params };
}
