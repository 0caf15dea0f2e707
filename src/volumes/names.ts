/**
 * Named volumes: where each lives and which names are allowed (the reference's rules and
 * error texts, so scripts written for it work). No I/O beyond existence checks.
 */
import { join } from "node:path";
import { WheellockError } from "../errors.js";
import { dataDir } from "../paths.js";

const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function volumesDir(): string {
  return join(dataDir(), "volumes");
}

/** The trimmed name, or ErrInvalidConfig-style failure with the reference's wording. */
export function checkVolumeName(raw: string): string {
  const name = raw.trim();
  if (!VOLUME_NAME_RE.test(name)) {
    throw new WheellockError(
      "ErrInvalidConfig",
      `invalid volume name: ${JSON.stringify(raw)} (allowed: alphanumeric, '_', '.', '-', must start with alphanumeric)`,
    );
  }
  return name;
}

export function volumePath(name: string): string {
  return join(volumesDir(), `${checkVolumeName(name)}.ext4`);
}
