/** Literal byte find/replace, the only kind of body rewrite hooks do (no regex). */
export interface ByteReplacement {
  find: Buffer;
  replace: Buffer;
}

/** Every non-overlapping occurrence, left to right; returns `data` itself when none. */
export function replaceAllBytes(data: Buffer, find: Buffer, replace: Buffer): Buffer {
  if (find.length === 0) return data;
  let at = data.indexOf(find);
  if (at < 0) return data;
  const parts: Buffer[] = [];
  let from = 0;
  while (at >= 0) {
    parts.push(data.subarray(from, at), replace);
    from = at + find.length;
    at = data.indexOf(find, from);
  }
  parts.push(data.subarray(from));
  return Buffer.concat(parts);
}

/** Each replacement over the whole result of the previous one, in order (reference order). */
export function applyReplacements(data: Buffer, replacements: readonly ByteReplacement[]): Buffer {
  let out = data;
  for (const r of replacements) out = replaceAllBytes(out, r.find, r.replace);
  return out;
}

export function toByteReplacements(
  list: ReadonlyArray<{ find: string; replace?: string }>,
): ByteReplacement[] {
  return list
    .filter((r) => r.find !== "")
    .map((r) => ({ find: Buffer.from(r.find), replace: Buffer.from(r.replace ?? "") }));
}
