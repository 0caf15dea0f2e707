import { readFileSync } from "node:fs";
import { ErrInvalidConfig } from "../errors.js";
import { parseEnvAssignment, type EnvAssignment, type HostEnv } from "./env-vars.js";

/**
 * Reads an env file: one `KEY=VALUE` or `KEY` (taken from `hostEnv`) per line. Lines are
 * trimmed, so a value keeps no leading or trailing blanks; blank lines and lines starting with
 * `#` are skipped. Quotes are not interpreted (`A="x"` sets `"x"` with the quotes, as Docker
 * does). Errors name `path:line`.
 */
export function parseEnvFile(path: string, hostEnv: HostEnv = process.env): EnvAssignment[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ErrInvalidConfig(`cannot read env file ${path}: ${reason}`);
  }
  // Editors on Windows add a byte-order mark, which would otherwise become part of the name.
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  const out: EnvAssignment[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? "").trim();
    if (line === "" || line.startsWith("#")) continue;
    const parsed = parseEnvAssignment(line, hostEnv);
    if (typeof parsed === "string") throw new ErrInvalidConfig(`${path}:${i + 1}: ${parsed}`);
    out.push(parsed);
  }
  return out;
}
