import { ErrInvalidConfig } from "../errors.js";

/** A host environment to read bare `KEY` entries from (`process.env` shape). */
export type HostEnv = Readonly<Record<string, string | undefined>>;

export interface EnvAssignment {
  name: string;
  value: string;
}

/**
 * Why `name` cannot be an environment variable name, or undefined if it can. Only what execve
 * cannot carry is refused (empty, `=`, NUL), as in the reference: images do use names such as
 * `com.example.flag`.
 */
export function envNameProblem(name: string): string | undefined {
  if (name.length === 0) return "environment variable name is empty";
  if (name.includes("=")) return `environment variable name contains "=": ${JSON.stringify(name)}`;
  if (name.includes("\0")) return `environment variable name contains NUL: ${JSON.stringify(name)}`;
  return undefined;
}

/** Why `value` cannot be an environment variable value (NUL would silently truncate it). */
export function envValueProblem(name: string, value: string): string | undefined {
  if (value.includes("\0")) return `environment variable ${name} value contains NUL`;
  return undefined;
}

/**
 * Parses `KEY=VALUE` (the value may be empty or contain `=`) or a bare `KEY` taken from
 * `hostEnv`. Returns the reason as a string instead of throwing so callers can add where the
 * text came from (a flag, or `file:line`).
 */
export function parseEnvAssignment(text: string, hostEnv: HostEnv): EnvAssignment | string {
  const eq = text.indexOf("=");
  const name = eq === -1 ? text : text.slice(0, eq);
  const nameProblem = envNameProblem(name);
  if (nameProblem !== undefined) return `${nameProblem} in ${JSON.stringify(text)}`;
  let value: string;
  if (eq === -1) {
    const fromHost = hostEnv[name];
    if (fromHost === undefined) return `environment variable is not set: ${name}`;
    value = fromHost;
  } else {
    value = text.slice(eq + 1);
  }
  const valueProblem = envValueProblem(name, value);
  if (valueProblem !== undefined) return valueProblem;
  return { name, value };
}

/** One `-e/--env` flag: `KEY=VALUE`, or `KEY` read from the host environment (must be set). */
export function parseEnvFlag(text: string, hostEnv: HostEnv = process.env): EnvAssignment {
  const parsed = parseEnvAssignment(text, hostEnv);
  if (typeof parsed === "string") throw new ErrInvalidConfig(parsed);
  return parsed;
}
