import type { HttpRequestHead } from "../intercept/contract.js";
import { percentDecode } from "./target.js";

const BASE64_TOKEN_RE = /[A-Za-z0-9+/_-]{20,}={0,2}/g;
const MAX_DECODE_ROUNDS = 3;

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

/**
 * The first of `placeholders` that occurs anywhere in the request head: method, host, target,
 * header names and values, as sent, percent-decoded (up to three rounds), case-folded, and
 * inside base64 tokens (Basic credentials, tokens in query strings). Best effort by nature —
 * a guest can always encode a string some other way — but the guarantee that matters does not
 * rest on it: a real value is only ever written toward the hosts its secret names.
 */
export function findPlaceholder(
  request: HttpRequestHead,
  placeholders: readonly string[],
): string | undefined {
  const raw = [request.method, request.host, request.target, ...request.headers.flat()];
  const views: string[] = [];
  for (const text of raw) {
    for (const d of decodings(text)) {
      views.push(d.toLowerCase());
      views.push(...base64Decodings(d));
    }
  }
  for (const p of placeholders) {
    const lower = p.toLowerCase();
    if (views.some((v) => v.includes(lower))) return p;
  }
  return undefined;
}
