import type { HeaderList } from "../intercept/contract.js";

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Header values may hold tabs and visible/obs-text characters, never CR, LF, NUL or controls. */
export function hasControlCharacters(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/**
 * Headers that frame the message or the connection: the proxy owns them, so a rule changing
 * them could desynchronise body framing (request smuggling) or retarget the request.
 */
const REQUEST_FRAMING = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade",
]);
const RESPONSE_FRAMING = new Set([
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "trailer",
  "upgrade",
]);

export type HeaderSide = "request" | "response";

/** Why a header name cannot be set or deleted by a rule, or undefined when it can. */
export function headerNameProblem(name: string, side: HeaderSide): string | undefined {
  if (!TOKEN_RE.test(name)) return `bad header name ${JSON.stringify(name)}`;
  const framing = side === "request" ? REQUEST_FRAMING : RESPONSE_FRAMING;
  if (framing.has(name.toLowerCase()))
    return `header ${JSON.stringify(name)} is managed by the proxy`;
  return undefined;
}

export function headerValueProblem(name: string, value: unknown): string | undefined {
  if (typeof value !== "string") return `header ${JSON.stringify(name)}: value is not a string`;
  if (hasControlCharacters(value))
    return `header ${JSON.stringify(name)}: value has CR, LF, NUL or other control characters`;
  return undefined;
}

export function isFramingHeader(name: string, side: HeaderSide): boolean {
  return (side === "request" ? REQUEST_FRAMING : RESPONSE_FRAMING).has(name.toLowerCase());
}

export function getHeader(headers: HeaderList, name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

/** Replaces every header of that name by one (at the first one's position, else appended). */
export function setHeader(headers: HeaderList, name: string, value: string): HeaderList {
  const lower = name.toLowerCase();
  const out: HeaderList = [];
  let placed = false;
  for (const h of headers) {
    if (h[0].toLowerCase() !== lower) out.push(h);
    else if (!placed) {
      out.push([name, value]);
      placed = true;
    }
  }
  if (!placed) out.push([name, value]);
  return out;
}

export function deleteHeader(headers: HeaderList, name: string): HeaderList {
  const lower = name.toLowerCase();
  return headers.filter(([n]) => n.toLowerCase() !== lower);
}

/**
 * A full replacement that keeps the framing headers of `original`; framing headers in
 * `replacement` are ignored, so a callback can copy the headers it was given and edit them.
 */
export function replaceHeaders(
  original: HeaderList,
  replacement: Record<string, string>,
  side: HeaderSide,
): HeaderList {
  const kept = original.filter(([n]) => isFramingHeader(n, side));
  return [...kept, ...Object.entries(replacement).filter(([n]) => !isFramingHeader(n, side))];
}

export function copyHeaders(headers: HeaderList): HeaderList {
  return headers.map(([n, v]) => [n, v]);
}
