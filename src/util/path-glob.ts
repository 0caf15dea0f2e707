/**
 * Path globs with Go `path.Match` syntax (the reference's): `*` matches any run of characters
 * other than `/`, `?` one such character, `[...]` a class (`[^...]` negated, ranges `a-z`),
 * and `\` escapes the next character. A malformed pattern throws when compiled.
 *
 * Not a RegExp: the path is the guest's, and a backtracking regex for `*a*a*a*` would let a
 * long path stall the host. Since nothing but a literal `/` matches `/`, pattern and path are
 * compared segment by segment, each with the linear-time star algorithm (O(path × pattern)).
 */
export interface PathGlob {
  test(path: string): boolean;
}

/** One pattern position: a star, or a test for one character. */
type Token = "*" | ((c: string) => boolean);

export function compilePathGlob(pattern: string): PathGlob {
  const fail = (why: string): never => {
    throw new Error(`bad path glob ${JSON.stringify(pattern)}: ${why}`);
  };
  const segments: Token[][] = [[]];
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    const current = segments[segments.length - 1] as Token[];
    if (c === "/") {
      segments.push([]);
      i++;
    } else if (c === "*") {
      if (current[current.length - 1] !== "*") current.push("*");
      i++;
    } else if (c === "?") {
      current.push(() => true);
      i++;
    } else if (c === "\\") {
      const lit = pattern[i + 1] ?? fail("trailing backslash");
      if (lit === "/") segments.push([]);
      else current.push((x) => x === lit);
      i += 2;
    } else if (c === "[") {
      const [test, end] = compileClass(pattern, i + 1, fail);
      current.push(test);
      i = end + 1;
    } else {
      current.push((x) => x === c);
      i++;
    }
  }
  return {
    test(path) {
      const parts = path.split("/");
      if (parts.length !== segments.length) return false;
      return segments.every((tokens, k) => matchSegment(tokens, [...(parts[k] as string)]));
    },
  };
}

/** A character class starting after `[`: its test, and the index of its `]`. */
function compileClass(
  pattern: string,
  from: number,
  fail: (why: string) => never,
): [(c: string) => boolean, number] {
  let j = from;
  let negate = false;
  if (pattern[j] === "^") {
    negate = true;
    j++;
  }
  const ranges: Array<[string, string]> = [];
  const next = (): string => {
    let c = pattern[j] ?? fail("unclosed [");
    if (c === "\\") {
      j++;
      c = pattern[j] ?? fail("trailing backslash in class");
    }
    j++;
    return c;
  };
  while (true) {
    if (j >= pattern.length) fail("unclosed [");
    if (pattern[j] === "]" && ranges.length > 0) break;
    const lo = next();
    let hi = lo;
    if (pattern[j] === "-" && pattern[j + 1] !== "]" && j + 1 < pattern.length) {
      j++;
      hi = next();
      if (hi < lo) fail(`bad range ${lo}-${hi}`);
    }
    ranges.push([lo, hi]);
  }
  const inClass = (c: string) => ranges.some(([lo, hi]) => c >= lo && c <= hi);
  return [(c) => inClass(c) !== negate, j];
}

/** Wildcard matching with one remembered star: linear backtracking, never exponential. */
function matchSegment(tokens: readonly Token[], chars: readonly string[]): boolean {
  let t = 0;
  let s = 0;
  let starT = -1;
  let starS = 0;
  while (s < chars.length) {
    const tok = tokens[t];
    if (tok !== undefined && tok !== "*" && tok(chars[s] as string)) {
      t++;
      s++;
    } else if (tok === "*") {
      starT = t++;
      starS = s;
    } else if (starT >= 0) {
      t = starT + 1;
      s = ++starS;
    } else return false;
  }
  while (tokens[t] === "*") t++;
  return t === tokens.length;
}
