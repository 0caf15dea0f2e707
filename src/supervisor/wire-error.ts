import { ErrFile, WheellockError } from "../errors.js";
import type { WireError } from "./wire.js";

/** An error as it crosses the control socket: code and message, errno for file errors. */
export function wireError(err: unknown): WireError {
  if (err instanceof ErrFile) {
    return { code: err.code, message: err.message, ...(err.errno ? { errno: err.errno } : {}) };
  }
  if (err instanceof WheellockError) return { code: err.code, message: err.message };
  return { code: "ErrExec", message: err instanceof Error ? err.message : String(err) };
}
