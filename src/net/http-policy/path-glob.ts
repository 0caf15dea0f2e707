/**
 * Path globs with Go `path.Match` syntax (the reference's): `*` matches any run of characters
 * other than `/`, `?` one such character, `[...]` a class (`[^...]` negated, ranges `a-z`),
 * and `\` escapes the next character. Compiled once to a RegExp; a malformed pattern throws.
 */
export function compilePathGlob(pattern: string): RegExp {
  let re = "^";
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`bad path glob ${JSON.stringify(pattern)}: ${why}`);
  };
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === "*") {
      re += "[^/]*";
      i++;
    } else if (c === "?") {
      re += "[^/]";
      i++;
    } else if (c === "\\") {
      if (i + 1 >= pattern.length) fail("trailing backslash");
      re += escapeRe(pattern[i + 1] as string);
      i += 2;
    } else if (c === "[") {
      const end = classEnd(pattern, i + 1);
      if (end < 0) fail("unclosed [");
      let body = pattern.slice(i + 1, end);
      let negate = false;
      if (body.startsWith("^")) {
        negate = true;
        body = body.slice(1);
      }
      if (body === "") fail("empty character class");
      re += `(?![/])[${negate ? "^" : ""}${classBody(body, fail)}]`;
      i = end + 1;
    } else {
      re += escapeRe(c);
      i++;
    }
  }
  return new RegExp(`${re}$`, "s");
}

function classEnd(pattern: string, from: number): number {
  for (let j = from; j < pattern.length; j++) {
    if (pattern[j] === "\\") j++;
    else if (pattern[j] === "]" && j > from) return j;
  }
  return -1;
}

function classBody(body: string, fail: (why: string) => never): string {
  let out = "";
  for (let j = 0; j < body.length; j++) {
    let c = body[j] as string;
    if (c === "\\") {
      j++;
      c = body[j] ?? fail("trailing backslash in class");
    }
    if (body[j + 1] === "-" && j + 2 < body.length) {
      let hi = body[j + 2] as string;
      let skip = 2;
      if (hi === "\\") {
        hi = body[j + 3] ?? fail("trailing backslash in class");
        skip = 3;
      }
      if (hi < c) fail(`bad range ${c}-${hi}`);
      out += `${escapeClass(c)}-${escapeClass(hi)}`;
      j += skip;
    } else out += escapeClass(c);
  }
  return out;
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

function escapeClass(c: string): string {
  return c.replace(/[\]\\^-]/g, "\\$&");
}
