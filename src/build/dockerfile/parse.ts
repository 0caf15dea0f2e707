/**
 * Dockerfile text -> instructions, with the maintained `dockerfile-ast` parser doing the
 * lexical work (line continuations, comments, the `escape` directive, flags, heredocs), and
 * this module checking what that lenient parser lets through: unknown instructions, missing
 * arguments, instructions before the first FROM, unterminated heredocs. Each problem is one
 * ErrBuild naming the line.
 */
import { DockerfileParser, type Instruction } from "dockerfile-ast";
import { ErrBuild } from "../../errors.js";

export interface Heredoc {
  name: string;
  content: string;
  /** `<<-`: leading tabs are stripped from each line. */
  stripTabs: boolean;
  /** Unquoted delimiter: variables in the body are expanded. */
  expand: boolean;
}

export interface RawInstruction {
  keyword: string;
  /** 1-based line of the keyword. */
  line: number;
  flags: Array<{ name: string; value: string | null }>;
  /**
   * Everything after the flags, line continuations joined and comment lines inside them
   * dropped; with heredocs, only the instruction's own first line.
   */
  args: string;
  /** With heredocs: the whole text after the flags (first line, bodies, delimiters). */
  script: string;
  heredocs: Heredoc[];
}

export interface ParsedDockerfile {
  escape: string;
  instructions: RawInstruction[];
}

const KNOWN = new Set([
  "FROM",
  "ARG",
  "ENV",
  "LABEL",
  "WORKDIR",
  "USER",
  "SHELL",
  "RUN",
  "COPY",
  "ADD",
  "ENTRYPOINT",
  "CMD",
  "EXPOSE",
  "VOLUME",
  "STOPSIGNAL",
  "HEALTHCHECK",
  "ONBUILD",
  "MAINTAINER",
]);

export function lineError(line: number, message: string): ErrBuild {
  return new ErrBuild(`Dockerfile line ${line}: ${message}`, { line });
}

function lineOffsets(text: string): number[] {
  const out = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") out.push(i + 1);
  return out;
}

export function parseDockerfile(text: string): ParsedDockerfile {
  const df = DockerfileParser.parse(text);
  const escape = df.getEscapeCharacter();
  const offsets = lineOffsets(text);
  const at = (p: { line: number; character: number }): number =>
    (offsets[p.line] ?? text.length) + p.character;
  const instructions: RawInstruction[] = [];
  let sawFrom = false;
  for (const ins of df.getInstructions()) {
    const keyword = ins.getKeyword().toUpperCase();
    const line = ins.getRange().start.line + 1;
    if (!KNOWN.has(keyword)) throw lineError(line, `unknown instruction ${ins.getKeyword()}`);
    if (keyword === "ONBUILD")
      throw lineError(line, "ONBUILD triggers are not supported by wheellock build");
    if (!sawFrom && keyword !== "ARG" && keyword !== "FROM")
      throw lineError(line, `${keyword} before the first FROM (only ARG may come first)`);
    if (keyword === "FROM") sawFrom = true;
    const raw = ins.getRawArgumentsContent() ?? "";
    const heredocs = readHeredocs(ins, text, at, line);
    const args = heredocs.length > 0 ? (raw.split("\n")[0] ?? "") : joinContinuations(raw, escape);
    if (args.trim() === "") throw lineError(line, `${keyword} needs arguments`);
    const flagged = ins as Instruction & {
      getFlags?: () => Array<{ getName(): string; getValue(): string | null }>;
    };
    const flags = (flagged.getFlags?.() ?? []).map((f) => ({
      name: f.getName(),
      value: f.getValue(),
    }));
    instructions.push({ keyword, line, flags, args, script: raw, heredocs });
  }
  if (!sawFrom) throw new ErrBuild("Dockerfile has no FROM instruction");
  return { escape, instructions };
}

/**
 * Docker's line continuation: a line ending in the escape character goes on with the next
 * line; empty lines and comment lines inside a continued instruction are dropped.
 */
function joinContinuations(raw: string, escape: string): string {
  const lines = raw.split("\n");
  let out = "";
  for (const [i, line] of lines.entries()) {
    if (i > 0 && (/^\s*#/.test(line) || line.trim() === "")) continue;
    const text = line.replace(/\r$/, "");
    if (text.endsWith(escape) && i < lines.length - 1) out += text.slice(0, -escape.length);
    else out += text;
  }
  return out;
}

function readHeredocs(
  ins: Instruction,
  text: string,
  at: (p: { line: number; character: number }) => number,
  line: number,
): Heredoc[] {
  const withHeredocs = ins as Instruction & {
    getHeredocs?: () => Array<{
      getName(): string;
      getStartRange(): {
        start: { line: number; character: number };
        end: { line: number; character: number };
      };
      getContentRange(): {
        start: { line: number; character: number };
        end: { line: number; character: number };
      } | null;
      getDelimiterRange(): unknown;
    }>;
  };
  return (withHeredocs.getHeredocs?.() ?? []).map((h) => {
    if (h.getDelimiterRange() === null)
      throw lineError(line, `heredoc <<${h.getName()} has no closing ${h.getName()} line`);
    const start = h.getStartRange();
    const opener = text.slice(at(start.start), at(start.end));
    const m = /^<<(-?)(["']?)/.exec(opener);
    const range = h.getContentRange();
    // The body is every line between the opener's line and the delimiter, each with its newline.
    const content = range === null ? "" : `${text.slice(at(range.start), at(range.end))}\n`;
    const stripTabs = m?.[1] === "-";
    return {
      name: h.getName(),
      content: stripTabs ? content.replace(/^\t+/gm, "") : content,
      stripTabs,
      expand: (m?.[2] ?? "") === "",
    };
  });
}
