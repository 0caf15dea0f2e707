import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from "node:zlib";
import { MAX_BUFFERED_BODY_BYTES } from "./hook-request.js";

/** The codings of a `Content-Encoding` value in the order applied; `identity` left out. */
export function contentCodings(header: string | undefined): string[] {
  if (header === undefined) return [];
  return header
    .split(",")
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== "" && c !== "identity");
}

/**
 * Undoes `codings` (last applied first) so literal replacements can see the text. Output is
 * bounded: a decompression bomb throws instead of filling memory. Unknown codings throw.
 */
export function decodeBody(body: Buffer, codings: readonly string[]): Buffer {
  const opts = { maxOutputLength: MAX_BUFFERED_BODY_BYTES };
  let out = body;
  for (const coding of [...codings].reverse()) {
    if (coding === "gzip" || coding === "x-gzip") out = gunzipSync(out, opts);
    else if (coding === "br") out = brotliDecompressSync(out, opts);
    else if (coding === "deflate") {
      // "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
      try {
        out = inflateSync(out, opts);
      } catch {
        out = inflateRawSync(out, opts);
      }
    } else throw new Error(`content coding ${JSON.stringify(coding)} is not supported`);
  }
  return out;
}
