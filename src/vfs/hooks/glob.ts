/**
 * Path globs for file hook rules, matched against absolute guest paths: within a segment the
 * Go `path.Match` syntax of the HTTP policy's globs (`*`, `?`, `[...]`, `\`), and a segment
 * that is exactly `**` matches any number of segments, none included (`/a/**` matches `/a`,
 * `/a/b/c`). Not a RegExp: the path is the guest's, so matching must stay linear-ish
 * (segments by dynamic programming, O(pattern segments × path segments), and each segment
 * with the HTTP policy's non-backtracking matcher).
 */
import { compilePathGlob, type PathGlob } from "../../util/index.js";

type Segment = "**" | PathGlob;

export function compileGlob(pattern: string): PathGlob {
  const segments: Segment[] = pattern
    .split("/")
    .map((part) => (part === "**" ? "**" : compilePathGlob(part)));
  return { test: (path) => matchSegments(segments, path.split("/")) };
}

function matchSegments(pattern: readonly Segment[], parts: readonly string[]): boolean {
  // next[j]: does pattern[i+1..] match parts[j..]? Filled from the last pattern segment back.
  let next = parts.map(() => false).concat(true);
  for (let i = pattern.length - 1; i >= 0; i--) {
    const segment = pattern[i]!;
    const current = new Array<boolean>(parts.length + 1).fill(false);
    for (let j = parts.length; j >= 0; j--) {
      current[j] =
        segment === "**"
          ? next[j]! || (j < parts.length && current[j + 1]!)
          : j < parts.length && next[j + 1]! && segment.test(parts[j]!);
    }
    next = current;
  }
  return next[0]!;
}
