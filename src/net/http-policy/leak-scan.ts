import type { HttpRequestHead } from "../intercept/contract.js";
import { percentDecode, splitTarget } from "./target.js";

const BASE64_TOKEN_RE = /[A-Za-z0-9+/_-]{20,}={0,2}/g;
const MAX_DECODE_ROUNDS = 3;

/** Where in a request head a placeholder was found. */
export type HeadPlace =
  | { kind: "method" | "host" | "path" | "query" | "header-name" }
  /** A header's value; `name` as sent. */
  | { kind: "header"; name: string };

/** The text and its percent-decodings (double encoding included). */
function decodings(text: string): string[] {
  const out = [text];
  let cur = text;
  for (let i = 0; i < MAX_DECODE_ROUNDS && cur.includes("%"); i++) {
    const next = percentDecode(cur);
    if (next === cur) break;
    out.push(next);
    cur = next;
  }
  return out;
}

/** What base64 (standard or URL-safe) tokens in `text` decode to, as Latin-1. */
function base64Decodings(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(BASE64_TOKEN_RE)) {
    out.push(Buffer.from(m[0], "base64").toString("latin1").toLowerCase());
  }
  return out;
}

/** Every form of `text` the scan compares against: as sent, percent-decoded, base64-decoded. */
function views(text: string): string[] {
  const out: string[] = [];
  for (const d of decodings(text)) out.push(d.toLowerCase(), ...base64Decodings(d));
  return out;
}

/**
 * One request head, decoded once, to look for placeholders in: method, host, path, query,
 * header names and values, as sent, percent-decoded (up to three rounds), case-folded, and
 * inside base64 tokens (Basic credentials, tokens in query strings). Best effort by nature —
 * a guest can always encode a string some other way — but the guarantee that matters does not
 * rest on it: a real value is only ever written where its secret allows.
 */
export class HeadScan {
  readonly #parts: ReadonlyArray<{ place: HeadPlace; views: string[] }>;

  constructor(request: HttpRequestHead) {
    const { path, query } = splitTarget(request.target);
    const texts: Array<[HeadPlace, string]> = [
      [{ kind: "method" }, request.method],
      [{ kind: "host" }, request.host],
      [{ kind: "path" }, path],
    ];
    if (query !== undefined) texts.push([{ kind: "query" }, query]);
    for (const [name, value] of request.headers)
      texts.push([{ kind: "header-name" }, name], [{ kind: "header", name }, value]);
    this.#parts = texts.map(([place, text]) => ({ place, views: views(text) }));
  }

  /** The first place `placeholder` occurs in, leaving out the places `skip` accepts. */
  find(
    placeholder: string,
    skip: (place: HeadPlace) => boolean = () => false,
  ): HeadPlace | undefined {
    const lower = placeholder.toLowerCase();
    for (const part of this.#parts)
      if (!skip(part.place) && part.views.some((v) => v.includes(lower))) return part.place;
    return undefined;
  }
}

/** A place in words for a block reason; never quotes guest text that may hold a placeholder. */
export function describePlace(place: HeadPlace): string {
  switch (place.kind) {
    case "header":
      return /^[A-Za-z0-9-]{1,64}$/.test(place.name) && !/sandbox_secret_/i.test(place.name)
        ? `header ${place.name}`
        : "a header";
    case "header-name":
      return "a header name";
    default:
      return `the ${place.kind}`;
  }
}
