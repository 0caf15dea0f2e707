export interface AuthChallenge {
  scheme: "bearer" | "basic" | "other";
  params: Record<string, string>;
}

/**
 * Parses the first challenge of a WWW-Authenticate header:
 * `Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"`.
 * Quoted values may contain commas and backslash escapes.
 */
export function parseChallenge(header: string | null | undefined): AuthChallenge | undefined {
  if (!header) return undefined;
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!m?.[1]) return undefined;
  const name = m[1].toLowerCase();
  const scheme = name === "bearer" ? "bearer" : name === "basic" ? "basic" : "other";
  const params: Record<string, string> = {};
  const re = /([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  const rest = m[2] ?? "";
  re.lastIndex = 0;
  for (let p = re.exec(rest); p; p = re.exec(rest)) {
    if (!p[1]) break;
    params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : (p[3] ?? "");
  }
  return { scheme, params };
}
