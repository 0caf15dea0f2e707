import { parseEnvFile } from "./env-file.js";
import { parseEnvFlag, type HostEnv } from "./env-vars.js";

/**
 * The environment from `--env-file` files and `-e` flags: files in order, then flags, each
 * later assignment replacing an earlier one (so `-e` overrides a file, as in Docker).
 */
export function mergeEnv(
  files: readonly string[],
  flags: readonly string[],
  hostEnv: HostEnv = process.env,
): Record<string, string> {
  // A Map, then fromEntries: a variable named `__proto__` becomes an own property instead of
  // changing the object's prototype.
  const env = new Map<string, string>();
  for (const file of files) {
    for (const { name, value } of parseEnvFile(file, hostEnv)) env.set(name, value);
  }
  for (const flag of flags) {
    const { name, value } = parseEnvFlag(flag, hostEnv);
    env.set(name, value);
  }
  return Object.fromEntries(env);
}
