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

/**
 * `run --platform`: a well-formed platform the guest can boot (linux/amd64, any variant), else
 * one line. Other platforms can be pulled (`pull --platform`) but never run.
 */
export function checkRunPlatform(text: string): Platform {
  const p = parsePlatform(text);
  if (p.os !== DEFAULT_PLATFORM.os || p.architecture !== DEFAULT_PLATFORM.architecture)
    throw new ErrInvalidConfig(
      `platform ${text} cannot run here: sandboxes run ${formatPlatform(DEFAULT_PLATFORM)} guests`,
    );
  return p;
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
