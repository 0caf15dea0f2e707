/**
 * A policy script given as content instead of a path: what a node passes on, having opened
 * and read the file a remote caller named (at create or `configure`), so that what it checked
 * is what runs. It is loaded from a private copy, so relative imports do not resolve.
 */
import { ErrInvalidConfig } from "../errors.js";

export interface PolicyScriptSource {
  /** The file's name (its extension picks JS or TS); no directories. */
  name: string;
  text: string;
}

/** Largest policy script taken as content. */
export const MAX_POLICY_SCRIPT_BYTES = 1024 * 1024;

export function checkScriptSource(where: string, value: unknown): PolicyScriptSource {
  const v = value as Partial<PolicyScriptSource> | null;
  if (
    typeof v !== "object" ||
    v === null ||
    typeof v.name !== "string" ||
    !/^[^/\0]{1,255}$/.test(v.name) ||
    v.name === "." ||
    v.name === ".." ||
    typeof v.text !== "string" ||
    Buffer.byteLength(v.text) > MAX_POLICY_SCRIPT_BYTES
  )
    throw new ErrInvalidConfig(
      `${where}: policyScriptSource must be { name: a file name, text: at most 1 MiB }`,
    );
  return Object.freeze({ name: v.name, text: v.text });
}
