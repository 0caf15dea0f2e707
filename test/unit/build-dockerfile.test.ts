// Dockerfile front end: word expansion as Docker does it, the checks on top of dockerfile-ast
// (each error names its line), and stage planning (--target, only needed stages).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  expandHeredoc,
  expandWord,
  expandWords,
  splitWords,
} from "../../src/build/dockerfile/lex.js";
import { parseDockerfile } from "../../src/build/dockerfile/parse.js";
import { globalArgValues, planBuild } from "../../src/build/plan.js";

const vars: Record<string, string> = { A: "one", EMPTY: "", SP: "a b" };
const lookup = (n: string): string | undefined => vars[n];

describe("word expansion", () => {
  test("variables, defaults, alternatives, quotes and escapes", () => {
    assert.equal(expandWord("$A-${A}", "\\", lookup), "one-one");
    assert.equal(expandWord("${MISSING:-dflt} ${EMPTY:-e} ${EMPTY-e}", "\\", lookup), "dflt e ");
    assert.equal(expandWord("${A:+alt}${MISSING:+alt}", "\\", lookup), "alt");
    assert.equal(expandWord("'$A' \"$A\" \\$A", "\\", lookup), "$A one $A");
    assert.equal(expandWord('"a\\"b"', "\\", lookup), 'a"b');
    assert.deepEqual(expandWords('$SP "c d" e\\ f', "\\", lookup), ["a", "b", "c d", "e f"]);
    assert.throws(() => expandWord("${A", "\\", lookup), /missing '}'/);
    assert.throws(() => expandWord("${MISSING:?must be set}", "\\", lookup), /must be set/);
    assert.throws(() => expandWord("'open", "\\", lookup), /single-quote/);
    assert.equal(expandHeredoc("say \"$A\" '$A'\n", "\\", lookup), "say \"one\" 'one'\n");
    assert.deepEqual(splitWords('A="x y" B=z C', "\\"), ['A="x y"', "B=z", "C"]);
    assert.equal(expandWord("`$A", "`", lookup), "$A");
  });
});

describe("parsing", () => {
  const err = (text: string): RegExp | undefined => {
    try {
      parseDockerfile(text);
    } catch (e) {
      return new RegExp((e as Error).message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    }
    return undefined;
  };
  test("each malformed Dockerfile is one error naming the line", () => {
    assert.throws(
      () => parseDockerfile("FROM x\nFROBNICATE y\n"),
      /Dockerfile line 2: unknown instruction FROBNICATE/,
    );
    assert.throws(
      () => parseDockerfile("FROM x\nONBUILD RUN y\n"),
      /line 2: ONBUILD triggers are not supported/,
    );
    assert.throws(() => parseDockerfile("RUN x\nFROM y\n"), /line 1: RUN before the first FROM/);
    assert.throws(() => parseDockerfile("# just a comment\n"), /no FROM instruction/);
    assert.throws(() => parseDockerfile("FROM x\nWORKDIR\n"), /line 2: WORKDIR needs arguments/);
    assert.throws(
      () => parseDockerfile("FROM x\nRUN <<EOF\necho\n"),
      /line 2: heredoc <<EOF has no closing EOF line/,
    );
    assert.equal(err("FROM x\nRUN true\n"), undefined);
  });
  test("continuations drop comment lines; heredocs keep their bodies", () => {
    const p = parseDockerfile(
      "FROM x\nRUN echo a \\\n  # note\n  b\nCOPY <<-EOT /f\n\tbody\n\tEOT\n",
    );
    assert.equal(p.instructions[1]?.args, "echo a   b");
    assert.deepEqual(p.instructions[2]?.heredocs, [
      { name: "EOT", content: "body\n", stripTabs: true, expand: true },
    ]);
  });
});

describe("stages", () => {
  const plan = (text: string, target?: string, args: Record<string, string> = {}) =>
    planBuild(parseDockerfile(text), (g) => globalArgValues(g, args, {}), target);
  const df = [
    "ARG BASE=alpine",
    "FROM ${BASE} AS deps",
    "FROM scratch AS unused",
    "FROM deps AS build",
    "COPY --from=0 /a /a",
    "FROM busybox",
    "COPY --from=build /a /a",
  ].join("\n");
  test("only the stages the target needs, dependencies first; ARG in FROM", () => {
    const p = plan(df);
    assert.deepEqual(p.order, [0, 2, 3]);
    assert.equal(p.stages[0]?.base, "alpine");
    assert.equal(plan(df, undefined, { BASE: "debian" }).stages[0]?.base, "debian");
    assert.deepEqual(plan(df, "deps").order, [0]);
  });
  test("a missing target or stage is one clear error", () => {
    assert.throws(() => plan(df, "nope"), /target stage "nope" not found/);
    assert.throws(
      () => plan("FROM a\nCOPY --from=3 /x /x\n"),
      /line 2: COPY --from=3: stage 3 is not an earlier stage/,
    );
    assert.throws(() => plan("FROM a AS x\nFROM b AS x\n"), /line 2: duplicate stage name "x"/);
  });
});
