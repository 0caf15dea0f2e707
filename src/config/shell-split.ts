import { ErrInvalidConfig } from "../errors.js";

const BLANKS = new Set([" ", "\t", "\n"]);
/** Inside double quotes a backslash only escapes these; before anything else it is literal. */
const DOUBLE_QUOTE_ESCAPABLE = new Set(["$", "`", '"', "\\", "\n"]);

/**
 * Splits a string into words the way a POSIX shell does before expansion: blanks separate
 * words; single quotes keep everything literal; double quotes keep everything but `\$`, `` \` ``,
 * `\"`, `\\` and backslash-newline; outside quotes a backslash makes the next character literal
 * and backslash-newline joins lines. Nothing is expanded and `#`, `;`, `|` are ordinary
 * characters: this is the inverse of `shellQuote`, not a shell. Throws ErrInvalidConfig on an
 * unterminated quote or a trailing backslash.
 */
export function shellSplit(input: string): string[] {
  const words: string[] = [];
  let word = "";
  // Distinguishes "no word yet" from an empty word written as '' or "".
  let inWord = false;
  let i = 0;
  while (i < input.length) {
    const c = input[i] as string;
    if (BLANKS.has(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      i++;
    } else if (c === "\\") {
      const next = input[i + 1];
      if (next === undefined)
        throw new ErrInvalidConfig("command ends with an unfinished backslash escape");
      if (next !== "\n") {
        word += next;
        inWord = true;
      }
      i += 2;
    } else if (c === "'") {
      const end = input.indexOf("'", i + 1);
      if (end === -1)
        throw new ErrInvalidConfig("command has an unterminated single-quoted string");
      word += input.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      inWord = true;
      for (;;) {
        const d = input[i];
        if (d === undefined)
          throw new ErrInvalidConfig("command has an unterminated double-quoted string");
        if (d === '"') {
          i++;
          break;
        }
        if (
          d === "\\" &&
          i + 1 < input.length &&
          DOUBLE_QUOTE_ESCAPABLE.has(input[i + 1] as string)
        ) {
          if (input[i + 1] !== "\n") word += input[i + 1];
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}
