/**
 * The argument forms of Dockerfile instructions: exec form (a JSON array of strings) versus
 * shell form, `key=value` lists (ENV, LABEL, ARG), and instruction flags, each checked with
 * an error naming the line.
 */
import { lineError, type RawInstruction } from "./parse.js";
import { expandWord, splitWords, type Lookup } from "./lex.js";

/** `["a", "b"]` -> argv; undefined when the text is not a JSON array of strings (shell form). */
export function execForm(args: string): string[] | undefined {
  const text = args.trim();
  if (!text.startsWith("[")) return undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (Array.isArray(parsed) && parsed.every((s) => typeof s === "string")) return parsed;
  } catch {
    // Docker treats text that is not valid JSON as shell form.
  }
  return undefined;
}

/** A command instruction's argv (exec form) or `[...shell, text]` (shell form). */
export function commandOf(ins: RawInstruction, shell: readonly string[]): string[] {
  const exec = execForm(ins.args);
  if (exec !== undefined) {
    if (exec.length === 0 && ins.keyword === "RUN")
      throw lineError(ins.line, "RUN [] has no command");
    return exec;
  }
  return [...shell, ins.args.trim()];
}

/**
 * `key=value` pairs (ENV, LABEL, ARG), values expanded; `ENV key value` (the old form, one
 * pair, everything after the first space is the value) when allowed.
 */
export function keyValues(
  ins: RawInstruction,
  escape: string,
  lookup: Lookup,
  opts: { oldForm: boolean; valueOptional: boolean },
): Array<[string, string | undefined]> {
  const words = splitWords(ins.args, escape);
  const first = words[0] ?? "";
  if (opts.oldForm && !first.includes("=")) {
    const rest = ins.args.trim().slice(first.length).trim();
    if (rest === "") throw lineError(ins.line, `${ins.keyword} ${first} needs a value`);
    return [[expandWord(first, escape, lookup), expandWord(rest, escape, lookup)]];
  }
  const out: Array<[string, string | undefined]> = [];
  for (const word of words) {
    const eq = word.indexOf("=");
    if (eq < 0) {
      if (!opts.valueOptional)
        throw lineError(ins.line, `${ins.keyword} expects key=value, got ${JSON.stringify(word)}`);
      out.push([expandWord(word, escape, lookup), undefined]);
      continue;
    }
    const key = expandWord(word.slice(0, eq), escape, lookup);
    if (key === "") throw lineError(ins.line, `${ins.keyword} has an empty name`);
    out.push([key, expandWord(word.slice(eq + 1), escape, lookup)]);
  }
  return out;
}

/** The instruction's flags by name, refusing unknown or repeated ones (except `repeatable`). */
export function flagsOf(
  ins: RawInstruction,
  known: readonly string[],
  repeatable: readonly string[] = [],
): Map<string, Array<string | null>> {
  const out = new Map<string, Array<string | null>>();
  for (const f of ins.flags) {
    if (!known.includes(f.name))
      throw lineError(ins.line, `${ins.keyword} does not support the flag --${f.name}`);
    const list = out.get(f.name) ?? [];
    if (list.length > 0 && !repeatable.includes(f.name))
      throw lineError(ins.line, `${ins.keyword} --${f.name} given more than once`);
    list.push(f.value);
    out.set(f.name, list);
  }
  return out;
}

/** `--name=value` of a flag that needs a value. */
export function flagValue(
  ins: RawInstruction,
  flags: Map<string, Array<string | null>>,
  name: string,
): string | undefined {
  const v = flags.get(name)?.[0];
  if (v === undefined) return undefined;
  if (v === null || v === "") throw lineError(ins.line, `${ins.keyword} --${name} needs a value`);
  return v;
}

/** `a=b,c=d` (a --mount or --secret value) as a list of pairs, in order. */
export function csvPairs(text: string): Array<[string, string]> {
  return text
    .split(",")
    .filter((p) => p.trim() !== "")
    .map((p) => {
      const eq = p.indexOf("=");
      return eq < 0 ? [p.trim(), ""] : [p.slice(0, eq).trim(), p.slice(eq + 1).trim()];
    });
}
