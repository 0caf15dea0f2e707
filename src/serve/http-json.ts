/** JSON in and out of the REST API: bounded bodies, one-line JSON errors. */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { WheellockError, type WheellockErrorCode } from "../errors.js";

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

/**
 * The HTTP status for each typed error from below; the body's `code` is what clients branch on
 * (the SDK revives the same class from it), the status only says whose fault it was.
 */
const STATUS_BY_CODE: Partial<Record<WheellockErrorCode, number>> = {
  ErrInvalidConfig: 400, // the caller's options
  ErrExec: 400, // a command that cannot start (unknown user, working directory)
  ErrAuth: 403,
  ErrVMNotFound: 404,
  ErrNotFound: 404, // also an image the registry does not have
  ErrVMNotRunning: 409,
  ErrImage: 502, // the node could not get the image from its registry
  ErrCapacity: 503,
  ErrSetup: 503, // the node is not set up (kernel, agent): not the caller's fault
  ErrTimeout: 504,
};

export function statusFor(err: unknown): { status: number; code: string; message: string } {
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message };
  if (err instanceof WheellockError)
    return { status: STATUS_BY_CODE[err.code] ?? 500, code: err.code, message: err.message };
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

/**
 * The request body as JSON; 413 past `maxBytes` (counted as it arrives, never buffered past).
 * Past the limit the rest is read and dropped, not cut off: a client still sending (a chunked
 * upload) then gets the 413, where a reset connection would have told it nothing. The server's
 * request timeout bounds how long that may go on.
 */
export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? "0");
  const tooLarge = new HttpError(413, "ErrTooLarge", `request body over ${maxBytes} bytes`);
  if (declared > maxBytes) {
    req.resume();
    return Promise.reject(tooLarge);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      req.off("data", onData);
      req.off("end", onEnd);
      chunks.length = 0;
      req.resume();
      reject(tooLarge);
    };
    const onEnd = (): void => {
      if (size === 0) return resolve({});
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown);
      } catch {
        reject(new HttpError(400, "ErrInvalidConfig", "request body is not valid JSON"));
      }
    };
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", reject);
    req.once("close", () => reject(new HttpError(400, "ErrInvalidConfig", "request body cut off")));
  });
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

/**
 * A refusal written on the raw socket, as one JSON line like every other error: before any
 * WebSocket exists, or for a request Node's HTTP parser refused. The socket closes after it.
 */
export function refuseOnSocket(socket: Duplex, err: unknown): void {
  const { status, code, message } = statusFor(err);
  const body = errorBody(code, message);
  // Closed once the answer is out, not when the peer closes its side: the server allows
  // half-open sockets, and a silent peer kept the connection (and its place in the node's
  // connection cap) for as long as it liked (review rev19 M1).
  socket.once("finish", () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n` +
      "Content-Type: application/json\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      (status === 401 ? 'WWW-Authenticate: Bearer realm="wheellock"\r\n' : "") +
      "Connection: close\r\n\r\n" +
      body,
  );
}
