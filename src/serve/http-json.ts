/** JSON in and out of the REST API: bounded bodies, one-line JSON errors. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { WheellockError } from "../errors.js";

/** An HTTP refusal with a typed code, answered as `{"error":{"code","message"}}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The HTTP status for a typed error from below (config errors are the caller's fault). */
export function statusFor(err: unknown): { status: number; code: string; message: string } {
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message };
  if (err instanceof WheellockError) {
    const status =
      err.code === "ErrInvalidConfig"
        ? 400
        : err.code === "ErrVMNotFound" || err.code === "ErrNotFound"
          ? 404
          : err.code === "ErrAuth"
            ? 403
            : err.code === "ErrCapacity"
              ? 503
              : err.code === "ErrVMNotRunning"
                ? 409
                : 500;
    return { status, code: err.code, message: err.message };
  }
  return { status: 500, code: "ErrInternal", message: "internal error" };
}

export function errorBody(code: string, message: string): string {
  // One line: newlines in a message would split it in logs and terminals.
  return `${JSON.stringify({ error: { code, message: message.replace(/[\r\n]+/g, " ") } })}\n`;
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = `${JSON.stringify(value)}\n`;
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  res.end(body);
}

export function sendError(res: ServerResponse, err: unknown): void {
  const { status, code, message } = statusFor(err);
  const body = errorBody(code, message);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...(status === 401 ? { "www-authenticate": 'Bearer realm="wheellock"' } : {}),
  });
  res.end(body);
}

/** The request body as JSON; 413 past `maxBytes` (counted as it arrives, never buffered past). */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > maxBytes)
    throw new HttpError(413, "ErrTooLarge", `request body over ${maxBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      req.destroy();
      throw new HttpError(413, "ErrTooLarge", `request body over ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
  } catch {
    throw new HttpError(400, "ErrInvalidConfig", "request body is not valid JSON");
  }
}

/**
 * A path segment, percent-decoded; a malformed escape (`%E0%A4%A`) gives "" so that it is
 * refused as a malformed id (400, or 403 to a caller who may not learn more), never a 500.
 */
export function decodePathSegment(raw: string | undefined): string {
  try {
    return decodeURIComponent(raw ?? "");
  } catch {
    return "";
  }
}

/** The request's URL; a target that is not a path (`http://[`) is a 400, not a 500. */
export function requestUrl(req: IncomingMessage): URL {
  try {
    return new URL(req.url ?? "/", "http://node");
  } catch {
    throw new HttpError(400, "ErrInvalidConfig", "malformed request target");
  }
}
