/**
 * `log` and `log_stream` (reference/matchlock-rpc.md §5.9-§5.10): the VM log — the serial
 * console plus the output of a launched entrypoint — of the last VM the session created, even
 * after `close`. `log_stream` sends what is there, then what is appended (checked every
 * 100 ms, from the start again if the file shrank), until it is cancelled.
 */
import { open } from "node:fs/promises";
import type { CallContext } from "./context.js";
import { RpcCode, RpcError } from "./wire.js";

const POLL_MS = 100;
/** One `log_stream.data` notification at most. */
const CHUNK_BYTES = 256 * 1024;
/** `log` returns at most the last this many bytes. */
export const MAX_LOG_BYTES = 64 * 1024 * 1024;

function logPathOf(ctx: CallContext): string {
  const path = ctx.session.lastLogPath;
  if (path === undefined) throw new RpcError(RpcCode.VmFailed, "VM not created");
  return path;
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === "ENOENT";
}

/** Bytes of the file from `offset` (at most `max`); an empty buffer when it does not exist. */
async function readFrom(
  path: string,
  offset: number,
  max: number,
): Promise<{ bytes: Buffer; size: number }> {
  let file;
  try {
    file = await open(path, "r");
  } catch (err) {
    if (isMissing(err)) return { bytes: Buffer.alloc(0), size: 0 };
    throw err;
  }
  try {
    const { size } = await file.stat();
    const start = Math.min(offset, size);
    const length = Math.min(size - start, max);
    const bytes = Buffer.alloc(length);
    const { bytesRead } = await file.read(bytes, 0, length, start);
    return { bytes: bytes.subarray(0, bytesRead), size };
  } finally {
    await file.close();
  }
}

export async function log(_params: unknown, ctx: CallContext): Promise<object> {
  const path = logPathOf(ctx);
  try {
    const { size } = await readFrom(path, 0, 0);
    const { bytes } = await readFrom(path, Math.max(0, size - MAX_LOG_BYTES), MAX_LOG_BYTES);
    return { content: bytes.toString("base64") };
  } catch (err) {
    throw new RpcError(RpcCode.FileFailed, (err as Error).message);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

export async function logStream(_params: unknown, ctx: CallContext): Promise<object> {
  const path = logPathOf(ctx);
  if (ctx.id === undefined)
    throw new RpcError(RpcCode.InvalidRequest, "log_stream requires request id");
  let offset = 0;
  while (!ctx.signal.aborted) {
    let chunk;
    try {
      chunk = await readFrom(path, offset, CHUNK_BYTES);
    } catch (err) {
      if (ctx.signal.aborted) break;
      throw new RpcError(RpcCode.FileFailed, (err as Error).message);
    }
    if (chunk.size < offset) {
      offset = 0; // truncated or replaced: start over
      continue;
    }
    if (chunk.bytes.length > 0) {
      ctx.notify("log_stream.data", { data: chunk.bytes.toString("base64") });
      offset += chunk.bytes.length;
      if (ctx.backedUp()) await ctx.writable();
      continue;
    }
    await sleep(POLL_MS, ctx.signal);
  }
  // It never ends by itself: only `cancel`, `close` or the end of the session stop it.
  throw new RpcError(RpcCode.Cancelled, "context canceled");
}
