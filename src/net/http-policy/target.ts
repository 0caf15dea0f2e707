/**
 * The request target (origin form, `path?query`) as hooks see and change it. Query edits keep
 * the untouched parameters byte for byte (the reference re-sorts and re-encodes them all).
 */

export interface SplitTarget {
  path: string;
  /** Without the `?`; undefined when the target has none. */
  query: string | undefined;
}

export function splitTarget(target: string): SplitTarget {
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  return { path: path === "" ? "/" : path, query: q < 0 ? undefined : target.slice(q + 1) };
}

export function joinTarget({ path, query }: SplitTarget): string {
  return query === undefined ? path : `${path}?${query}`;
}

/**
 * Decodes every valid `%XX` (as Latin-1 bytes, so nothing is lost) and leaves invalid ones;
 * never throws, unlike decodeURIComponent.
 */
export function percentDecode(text: string): string {
  return text.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) =>
    String.fromCharCode(parseInt(hex, 16)),
  );
}

function decodeQueryPart(part: string): string {
  return percentDecode(part.replace(/\+/g, " "));
}

export function queryParams(query: string | undefined): URLSearchParams {
  return new URLSearchParams(query ?? "");
}

/** Sets `key` to one value: the first occurrence is replaced in place, the others removed. */
export function setQueryParam(query: string | undefined, key: string, value: string): string {
  const encoded = `${encodeURIComponent(key)}=${encodeURIComponent(value)}`;
  const parts = query === undefined || query === "" ? [] : query.split("&");
  const out: string[] = [];
  let placed = false;
  for (const part of parts) {
    const rawKey = part.split("=", 1)[0] ?? "";
    if (decodeQueryPart(rawKey) !== key) out.push(part);
    else if (!placed) {
      out.push(encoded);
      placed = true;
    }
  }
  if (!placed) out.push(encoded);
  return out.join("&");
}

export function deleteQueryParam(query: string | undefined, key: string): string | undefined {
  if (query === undefined) return undefined;
  return query
    .split("&")
    .filter((part) => decodeQueryPart(part.split("=", 1)[0] ?? "") !== key)
    .join("&");
}

export function encodeQuery(params: Record<string, string>): string {
  return Object.entries(params)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
}

/** Resolves `.` and `..` segments the way servers do before routing. */
function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segments = path.split("/");
  for (const [i, seg] of segments.entries()) {
    if (seg === ".") {
      if (i === segments.length - 1) out.push("");
    } else if (seg === "..") {
      if (out.length > 1) out.pop();
      if (i === segments.length - 1) out.push("");
    } else out.push(seg);
  }
  const joined = out.join("/");
  return joined.startsWith("/") ? joined : `/${joined}`;
}

/**
 * The forms of a path a rule's glob is tried against: as sent, percent-decoded, and decoded
 * with dot segments resolved. A guest that writes `/%61dmin` or `/x/../admin` must not slip
 * past a rule for `/admin/*`.
 */
export function pathForms(path: string): string[] {
  const decoded = percentDecode(path);
  return [...new Set([path, decoded, removeDotSegments(decoded)])];
}

/** Why a path cannot be sent as a request path, or undefined when it can. */
export function pathProblem(path: unknown): string | undefined {
  if (typeof path !== "string") return "path is not a string";
  if (!path.startsWith("/")) return `path ${JSON.stringify(path)} does not start with "/"`;
  for (const ch of path) {
    const c = ch.charCodeAt(0);
    if (c <= 0x20 || c >= 0x7f || ch === "?" || ch === "#")
      return `path ${JSON.stringify(path)} has spaces, control characters, non-ASCII, "?" or "#"`;
  }
  return undefined;
}
