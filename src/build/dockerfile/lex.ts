/**
 * Docker's word processing for Dockerfile arguments (BuildKit's shell lexer): quote removal,
 * the escape character, and `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`,
 * `${VAR+word}`, `${VAR:?msg}`, `${VAR?msg}`. Single quotes are literal; in double quotes only
 * `$`, `"` and the escape character can be escaped. Variables come from ARG and ENV; unknown
 * ones expand to "". Used for the instructions Docker expands (FROM, COPY, ADD, ENV, ARG,
 * LABEL, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL), never for RUN/CMD/ENTRYPOINT, whose shell
 * does its own.
 */
export type Lookup = (name: string) => string | undefined;

export class LexError extends Error {}

class Scanner {
  pos = 0;
  constructor(readonly text: string) {}
  peek(): string | undefined {
    return this.text[this.pos];
  }
  next(): string | undefined {
    return this.text[this.pos++];
  }
}

interface Options {
  escape: string;
  lookup: Lookup;
  /** Heredoc bodies: quotes are literal text, only `$` and escapes are processed. */
  quotesLiteral?: boolean;
}

/** Expands one word; returns the text and its split into words (quoted spaces do not split). */
function lexWord(text: string, opts: Options): { text: string; words: string[] } {
  const s = new Scanner(text);
  let result = "";
  const words: string[] = [];
  let word = "";
  let inWord = false;
  const addChar = (c: string, splittable: boolean): void => {
    result += c;
    if (splittable && /\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  };
  for (let c = s.peek(); c !== undefined; c = s.peek()) {
    if (c === "'" && !opts.quotesLiteral) {
      s.next();
      let lit = "";
      for (;;) {
        const n = s.next();
        if (n === undefined)
          throw new LexError("unexpected end of statement while looking for matching single-quote");
        if (n === "'") break;
        lit += n;
      }
      for (const ch of lit) addChar(ch, false);
      inWord = true;
    } else if (c === '"' && !opts.quotesLiteral) {
      s.next();
      const inner = doubleQuoted(s, opts);
      for (const ch of inner) addChar(ch, false);
      inWord = true;
    } else if (c === "$") {
      for (const ch of dollar(s, opts)) addChar(ch, true);
    } else {
      s.next();
      if (c === opts.escape) {
        const n = s.next();
        if (n === undefined) break;
        addChar(n, false);
      } else addChar(c, true);
    }
  }
  if (inWord) words.push(word);
  return { text: result, words };
}

function doubleQuoted(s: Scanner, opts: Options): string {
  let out = "";
  for (;;) {
    const c = s.peek();
    if (c === undefined)
      throw new LexError("unexpected end of statement while looking for matching double-quote");
    if (c === '"') {
      s.next();
      return out;
    }
    if (c === "$") {
      out += dollar(s, opts);
      continue;
    }
    s.next();
    if (c === opts.escape) {
      const n = s.peek();
      if (n === undefined) continue;
      if (n === '"' || n === "$" || n === opts.escape) {
        out += s.next();
        continue;
      }
    }
    out += c;
  }
}

function name(s: Scanner): string {
  const first = s.peek();
  if (first !== undefined && /[0-9*#@!?$-]/.test(first)) {
    s.next();
    return first;
  }
  let out = "";
  for (let c = s.peek(); c !== undefined && /[A-Za-z0-9_]/.test(c); c = s.peek()) out += s.next();
  return out;
}

/** Text up to the closing `}` (nested expansions processed). */
function untilBrace(s: Scanner, opts: Options): string {
  let out = "";
  for (;;) {
    const c = s.peek();
    if (c === undefined) throw new LexError("syntax error: missing '}'");
    if (c === "}") {
      s.next();
      return out;
    }
    if (c === "$") out += dollar(s, opts);
    else if (c === "'" && !opts.quotesLiteral) {
      s.next();
      for (let n = s.next(); n !== "'"; n = s.next()) {
        if (n === undefined) throw new LexError("syntax error: missing '}'");
        out += n;
      }
    } else if (c === '"' && !opts.quotesLiteral) {
      s.next();
      out += doubleQuoted(s, opts);
    } else {
      s.next();
      if (c === opts.escape && s.peek() !== undefined) out += s.next();
      else out += c;
    }
  }
}

function dollar(s: Scanner, opts: Options): string {
  s.next();
  if (s.peek() !== "{") {
    const n = name(s);
    return n === "" ? "$" : (opts.lookup(n) ?? "");
  }
  s.next();
  const first = s.peek();
  if (first === undefined) throw new LexError("syntax error: missing '}'");
  if (first === "{" || first === "}" || first === ":")
    throw new LexError("syntax error: bad substitution");
  const n = name(s);
  const value = opts.lookup(n);
  const op = s.next();
  if (op === "}") return value ?? "";
  const colon = op === ":";
  const modifier = colon ? s.next() : op;
  const word = untilBrace(s, opts);
  const unset = value === undefined || (colon && value === "");
  switch (modifier) {
    case "-":
      return unset ? word : (value as string);
    case "+":
      return unset ? "" : word;
    case "?":
      if (unset) throw new LexError(`${n}: ${word || "is not allowed to be unset"}`);
      return value as string;
    default:
      throw new LexError(`unsupported modifier (${modifier ?? "end"}) in substitution`);
  }
}

/** One word: quotes removed, variables expanded (`COPY "a" $DEST`). */
export function expandWord(text: string, escape: string, lookup: Lookup): string {
  return lexWord(text, { escape, lookup }).text;
}

/** Expanded and split into words (quoted or escaped whitespace does not split). */
export function expandWords(text: string, escape: string, lookup: Lookup): string[] {
  return lexWord(text, { escape, lookup }).words;
}

/** A heredoc body with an unquoted delimiter: variables expanded, quotes kept as text. */
export function expandHeredoc(text: string, escape: string, lookup: Lookup): string {
  return lexWord(text, { escape, lookup, quotesLiteral: true }).text;
}

/**
 * Splits on whitespace outside quotes, keeping quotes and escapes (Docker's parseWords, used
 * for ENV/LABEL/ARG before each `key=value` word is expanded).
 */
export function splitWords(text: string, escape: string): string[] {
  const words: string[] = [];
  let word = "";
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quote === undefined && /\s/.test(c)) {
      if (word !== "") words.push(word);
      word = "";
      continue;
    }
    if (c === escape && quote !== "'" && i + 1 < text.length) {
      word += c + (text[++i] as string);
      continue;
    }
    if (quote === undefined && (c === '"' || c === "'")) quote = c;
    else if (c === quote) quote = undefined;
    word += c;
  }
  if (word !== "") words.push(word);
  return words;
}
