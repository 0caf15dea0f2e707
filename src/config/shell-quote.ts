import { ErrInvalidConfig } from "../errors.js";

/**
 * Characters that mean nothing to a POSIX shell in any position of a word. An allowlist, not
 * the reference's (go-shellquote) denylist: that one leaves `#` bare, so `["echo", "#x"]`
 * became `echo #x`, which the shell reads as a comment and prints an empty line.
 */
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** `NAME=...` as the first word is a variable assignment, not the command to run. */
const ASSIGNMENT_PREFIX = /^[A-Za-z_][A-Za-z0-9_]*=/;

/** Reserved words are only special as the first word; bash's extras included for images whose `sh` is bash. */
const RESERVED_WORDS = new Set([
  "!",
  "{",
  "}",
  "case",
  "do",
  "done",
  "elif",
  "else",
  "esac",
  "fi",
  "for",
  "if",
  "in",
  "then",
  "until",
  "while",
  "[[",
  "]]",
  "function",
  "select",
  "time",
  "coproc",
]);

function quoteWord(word: string, isFirst: boolean): string {
  if (word === "") return "''";
  const safe =
    SAFE_WORD.test(word) &&
    !(isFirst && (ASSIGNMENT_PREFIX.test(word) || RESERVED_WORDS.has(word)));
  if (safe) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Joins argv into one string that a POSIX shell (`sh -c`) splits back into exactly `args`:
 * safe words stay bare, everything else is single-quoted with `'\''` for embedded quotes,
 * empty words become `''`, and `[]` gives `""`. Same contract as the reference's
 * ShellQuoteArgs; the output text can differ (it backslash-escapes where this quotes).
 * Throws ErrInvalidConfig for a NUL byte, which no exec argument can carry.
 */
export function shellQuote(args: readonly string[]): string {
  return args
    .map((arg, i) => {
      if (arg.includes("\0")) {
        throw new ErrInvalidConfig(`command argument ${i} contains a NUL byte`);
      }
      return quoteWord(arg, i === 0);
    })
    .join(" ");
}
