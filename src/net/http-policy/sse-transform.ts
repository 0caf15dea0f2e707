import { Transform, type TransformCallback } from "node:stream";
import { applyReplacements, type ByteReplacement } from "./bytes.js";

/** A single SSE line longer than this cannot be rewritten; the stream fails instead. */
export const MAX_SSE_LINE_BYTES = 4 * 1024 * 1024;

const NL = 0x0a;
const CR = 0x0d;
const DATA = Buffer.from("data:");

/**
 * Rewrites a `text/event-stream` body as it streams: only lines that start with `data:` change
 * (the replacements apply to what follows `data:`), every line ending (`\n` or `\r\n`) is kept,
 * and a line split across chunks is held until its end arrives, so where the upstream's chunks
 * happen to break never changes the output. A line past `maxLineBytes` destroys the stream
 * with an error (the proxy then aborts the response) rather than passing it unrewritten.
 */
export function sseDataTransform(
  replacements: readonly ByteReplacement[],
  maxLineBytes = MAX_SSE_LINE_BYTES,
): Transform {
  let pending: Buffer = Buffer.alloc(0);

  const finds = replacements.map((r) => r.find);

  /** The region with its `data:` lines rewritten; untouched runs are passed as slices. */
  const rewriteLines = (region: Buffer, push: (b: Buffer) => void): void => {
    // Most regions contain nothing to replace: pass them whole.
    if (!finds.some((f) => region.includes(f))) return push(region);
    let runStart = 0;
    let start = 0;
    while (start < region.length) {
      const nl = region.indexOf(NL, start);
      const end = nl < 0 ? region.length : nl + 1;
      const line = region.subarray(start, end);
      if (line.subarray(0, DATA.length).equals(DATA)) {
        const rewritten = rewriteDataLine(line);
        if (rewritten !== line) {
          if (start > runStart) push(region.subarray(runStart, start));
          push(rewritten);
          runStart = end;
        }
      }
      start = end;
    }
    if (runStart < region.length) push(region.subarray(runStart));
  };

  const rewriteDataLine = (line: Buffer): Buffer => {
    let bodyEnd = line.length;
    if (line[bodyEnd - 1] === NL) bodyEnd--;
    if (bodyEnd > DATA.length && line[bodyEnd - 1] === CR) bodyEnd--;
    const payload = line.subarray(DATA.length, bodyEnd);
    const rewritten = applyReplacements(payload, replacements);
    if (rewritten === payload) return line;
    return Buffer.concat([DATA, rewritten, line.subarray(bodyEnd)]);
  };

  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      const lastNl = chunk.lastIndexOf(NL);
      if (lastNl < 0) {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        if (pending.length > maxLineBytes)
          return done(new Error(`event-stream line longer than ${maxLineBytes} bytes`));
        return done();
      }
      const complete = chunk.subarray(0, lastNl + 1);
      const region = pending.length === 0 ? complete : Buffer.concat([pending, complete]);
      pending = chunk.subarray(lastNl + 1);
      const out: Buffer[] = [];
      rewriteLines(region, (b) => out.push(b));
      this.push(out.length === 1 ? out[0] : Buffer.concat(out));
      done();
    },
    flush(done: TransformCallback) {
      if (pending.length > 0) rewriteLines(pending, (b) => this.push(b));
      pending = Buffer.alloc(0);
      done();
    },
  });
}
