/**
 * Headers as the reference's callback protocol carries them: Go's `http.Header`, a map from
 * canonical names (`Content-Type`) to value lists, without `Host` (Go keeps it apart).
 */
type HeaderList = ReadonlyArray<readonly [string, string]>;

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Go's `http.CanonicalHeaderKey`: names that are not tokens are returned as they are. */
export function canonicalHeaderKey(name: string): string {
  if (!TOKEN_RE.test(name)) return name;
  return name
    .toLowerCase()
    .replace(/(^|-)([a-z])/g, (_m, dash: string, ch: string) => dash + ch.toUpperCase());
}

/** A header list as `map[string][]string`, in the order names first appear; undefined if empty. */
export function headerMap(headers: HeaderList): Record<string, string[]> | undefined {
  const out: Record<string, string[]> = {};
  for (const [name, value] of headers) {
    const key = canonicalHeaderKey(name);
    if (key === "Host") continue;
    (out[key] ??= []).push(value);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * A callback's header map as wheellock's `headers` (one value per name): several values are
 * joined with ", ", as HTTP allows for every header but Set-Cookie. Undefined when malformed.
 */
export function headerRecord(value: unknown): Record<string, string> | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const out: Record<string, string> = {};
  for (const [name, values] of Object.entries(value)) {
    const key = canonicalHeaderKey(name.trim());
    if (key === "") continue;
    if (!Array.isArray(values) || !values.every((v) => typeof v === "string")) return undefined;
    // Go sends no header for an empty value list.
    if (values.length > 0) out[key] = values.join(", ");
  }
  return out;
}
