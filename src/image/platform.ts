import { ErrInvalidConfig } from "../errors.js";

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** The guest is x86-64 Linux; other platforms can be pulled (and listed) but not booted. */
export const DEFAULT_PLATFORM: Platform = { os: "linux", architecture: "amd64" };

/** `os/arch[/variant]`, e.g. `linux/amd64`, `linux/arm64/v8`. */
export function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  const [os, architecture, variant] = parts;
  if (
    parts.length < 2 ||
    parts.length > 3 ||
    !os ||
    !architecture ||
    parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))
  )
    throw new ErrInvalidConfig(
      `invalid platform "${text}": expected os/arch[/variant], e.g. linux/amd64`,
    );
  return variant !== undefined ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, ...(p.variant !== undefined ? [p.variant] : [])].join("/");
}

/**
 * Whether an index entry's platform serves `wanted`. The variant matters only when asked for,
 * except that arm64 `v8` and no variant are the same thing (as containerd treats them).
 */
export function platformMatches(
  candidate: Partial<Platform> | undefined,
  wanted: Platform,
): boolean {
  if (!candidate || candidate.os !== wanted.os || candidate.architecture !== wanted.architecture)
    return false;
  if (wanted.variant === undefined) return true;
  const norm = (v: string | undefined): string | undefined =>
    wanted.architecture === "arm64" && v === "v8" ? undefined : v;
  return norm(candidate.variant) === norm(wanted.variant);
}
