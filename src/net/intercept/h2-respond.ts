/** Answers on a guest HTTP/2 stream that the proxy writes itself (refusals, hook responses). */
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { HeaderList, NetworkBlockCode } from "./contract.js";
import { h2Fields } from "./h2-headers.js";
import { withLength } from "./headers.js";

/** A whole response; false when the stream can no longer take one (headers already sent, or gone). */
export function respondWhole(
  stream: ServerHttp2Stream,
  status: number,
  headers: HeaderList,
  body: Buffer,
): boolean {
  if (stream.destroyed || stream.headersSent) return false;
  stream.respond({ ...h2Fields(withLength(headers, body.length)), ":status": status });
  stream.end(body);
  return true;
}

/** A plain-text refusal (403 with `x-wheellock-blocked`, 502, ...); a started response is reset instead. */
export function respondPlain(
  stream: ServerHttp2Stream,
  status: number,
  text: string,
  code?: NetworkBlockCode,
): void {
  const headers: HeaderList = [["content-type", "text/plain; charset=utf-8"]];
  if (code) headers.push(["x-wheellock-blocked", code]);
  if (!respondWhole(stream, status, headers, Buffer.from(`${text}\n`)) && !stream.destroyed)
    stream.close(INTERNAL_ERROR);
}

/** RST_STREAM codes (RFC 9113 §7). */
export const INTERNAL_ERROR = 0x2;
export const CANCEL = 0x8;

/** A received header block (Node's object form) as a HeaderList, pseudo-headers dropped. */
export function fieldsOf(headers: IncomingHttpHeaders, raw?: readonly string[]): HeaderList {
  if (raw !== undefined) {
    const out: HeaderList = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i] ?? "";
      if (!name.startsWith(":")) out.push([name, raw[i + 1] ?? ""]);
    }
    return out;
  }
  const out: HeaderList = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.push([name, String(v)]);
  }
  return out;
}
