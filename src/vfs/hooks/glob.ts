/**
 * Path globs for file hook rules, matched against absolute guest paths:
 * `*` is any run of characters without `/`, `**` any run including `/` (`/a/**` also matches
 * `/a` itself), `?` one character other than `/`; everything else is literal.
 */
function escape(text: string): string {
  return text.replace(/[.+^${}()|[\]\\]/g, "\\$&");
}

export function globToRegExp(glob: string): RegExp {
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i]!;
    if (char === "*" && glob[i + 1] === "*") {
      i++;
      // "/**" at the end also matches the directory itself.
      if (source.endsWith("/") && i === glob.length - 1) source = `${source.slice(0, -1)}(?:/.*)?`;
      else source += ".*";
    } else if (char === "*") source += "[^/]*";
    else if (char === "?") source += "[^/]";
    else source += escape(char);
  }
  return new RegExp(`^${source}$`, "s");
}
