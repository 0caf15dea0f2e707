/**
 * The id of a request line too long to parse, from the bytes kept at its two ends, so the
 * client's pending call gets its error instead of waiting forever. The TypeScript and Python
 * SDKs write `id` before `params` (found near the start); Go marshals it last (found at the
 * very end). Only a top-level `id` counts: the scan of the head tracks nesting and strings.
 */

const TAIL_ID = /"id"\s*:\s*(\d{1,16})\s*\}\s*$/;

function asId(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Walks the head of a JSON object; returns the number after a depth-1 key `"id"`, if any. */
function idInHead(head: string): number | undefined {
  let depth = 0;
  let i = 0;
  let lastKey: string | undefined;
  while (i < head.length) {
    const ch = head[i] as string;
    if (ch === '"') {
      const end = stringEnd(head, i);
      if (end < 0) return undefined;
      const text = head.slice(i + 1, end);
      i = end + 1;
      // A string directly followed by `:` is a key.
      const rest = /^\s*:/.exec(head.slice(i, i + 64));
      if (rest && depth === 1) {
        lastKey = text;
        i += rest[0].length;
        if (lastKey === "id") return asId(/^\s*(\d{1,16})[\s,}]/.exec(head.slice(i, i + 64))?.[1]);
      }
      continue;
    }
    if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") depth--;
    i++;
  }
  return undefined;
}

/** Index of the quote closing the string that opens at `start`, or -1. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}

export function salvageId(head: Buffer, tail: Buffer): number | undefined {
  return (
    idInHead(head.toString("utf8")) ?? asId(TAIL_ID.exec(tail.toString("utf8").trimEnd())?.[1])
  );
}
