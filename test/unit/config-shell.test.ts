import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { ErrInvalidConfig } from "../../src/errors.js";
import { shellQuote, shellSplit } from "../../src/config/index.js";
import { mulberry32 } from "../helpers/seeded-random.js";

/** What a real POSIX shell makes of `words` when they follow `set --`. */
function argvFromRealShell(words: string): string[] {
  const script = `set -- ${words}\nfor a in "$@"; do printf '%s\\0' "$a"; done`;
  const res = spawnSync("/bin/sh", ["-c", script], { encoding: "utf8" });
  assert.equal(res.status, 0, res.stderr);
  const parts = res.stdout.split("\0");
  parts.pop();
  return parts;
}

const ALPHABET = [..."abcXYZ019_-./:=@%+,", ..." \t\n'\"\\$`!*?[]{}~#;&|<>()^", "é", "😀", "\r"];

function randomArgv(rand: () => number): string[] {
  const count = Math.floor(rand() * 6);
  const argv: string[] = [];
  for (let i = 0; i < count; i++) {
    const len = Math.floor(rand() * 9);
    let word = "";
    for (let j = 0; j < len; j++) word += ALPHABET[Math.floor(rand() * ALPHABET.length)];
    argv.push(word);
  }
  return argv;
}

describe("shellQuote", () => {
  it("leaves safe words bare and joins with spaces", () => {
    assert.equal(
      shellQuote(["ls", "-la", "/tmp/x_y.z", "a=b", "--opt=1", "user@host:2", "50%", "a,b+c"]),
      "ls -la /tmp/x_y.z a=b --opt=1 user@host:2 50% a,b+c",
    );
  });

  it("single-quotes everything else, with '\\'' for embedded quotes", () => {
    assert.equal(shellQuote(["echo", "hello world"]), "echo 'hello world'");
    assert.equal(shellQuote(["echo", "it's"]), "echo 'it'\\''s'");
    assert.equal(
      shellQuote(["echo", "$HOME", "*", "~", "#x", "a\nb"]),
      "echo '$HOME' '*' '~' '#x' 'a\nb'",
    );
    assert.equal(shellQuote(["echo", "é"]), "echo 'é'");
  });

  it("writes empty arguments as '' and no arguments as an empty string", () => {
    assert.equal(shellQuote(["printf", ""]), "printf ''");
    assert.equal(shellQuote([]), "");
  });

  it("quotes a first word the shell would read as an assignment or a reserved word", () => {
    assert.equal(shellQuote(["A=b", "A=b"]), "'A=b' A=b");
    assert.equal(shellQuote(["if", "if"]), "'if' if");
    assert.equal(shellQuote(["=x"]), "=x");
  });

  it("rejects NUL, which no exec argument can carry", () => {
    assert.throws(
      () => shellQuote(["echo", "a\0b"]),
      (err: unknown) =>
        err instanceof ErrInvalidConfig &&
        err.message === "invalid configuration: command argument 1 contains a NUL byte",
    );
  });

  it("runs the named program in a real shell, even for assignment-like, reserved or # words", () => {
    for (const argv of [["A=b"], ["if"], ["#not-a-comment"]]) {
      const res = spawnSync("/bin/sh", ["-c", shellQuote(argv)], { encoding: "utf8" });
      // 127: the shell looked for a program with that exact name, rather than setting a
      // variable, failing to parse, or treating the line as a comment (all exit 0 or 2).
      assert.equal(res.status, 127, `${JSON.stringify(argv)}: ${res.stderr}`);
    }
  });

  it("gives a real shell back the same argv for tricky words", () => {
    const argv = [
      "",
      "a b",
      "it's",
      '"q"',
      "back\\slash",
      "$(id)",
      "`id`",
      "*",
      "~root",
      "#c",
      "a\nb",
      "tab\t",
      "é😀",
      "-n",
      "--",
    ];
    assert.deepEqual(argvFromRealShell(shellQuote(argv)), argv);
  });
});

describe("shellSplit", () => {
  it("splits on blanks and drops empty space", () => {
    assert.deepEqual(shellSplit("  a  b\tc\nd  "), ["a", "b", "c", "d"]);
    assert.deepEqual(shellSplit(""), []);
    assert.deepEqual(shellSplit(" \t\n"), []);
  });

  it("keeps single-quoted text literal", () => {
    assert.deepEqual(shellSplit("'a b' 'x\\y' '$z' '\"'"), ["a b", "x\\y", "$z", '"']);
  });

  it("honours only the POSIX escapes inside double quotes", () => {
    assert.deepEqual(shellSplit('"a\\"b" "\\$x" "\\\\" "\\n" "l1\\\nl2" "\'"'), [
      'a"b',
      "$x",
      "\\",
      "\\n",
      "l1l2",
      "'",
    ]);
  });

  it("makes the next character literal after a backslash outside quotes", () => {
    assert.deepEqual(shellSplit("a\\ b \\'q\\' \\\\"), ["a b", "'q'", "\\"]);
    assert.deepEqual(shellSplit("a\\\nb"), ["ab"]);
  });

  it("joins adjacent quoted and bare parts into one word and keeps empty words", () => {
    assert.deepEqual(shellSplit("a'b'\"c\"d '' \"\""), ["abcd", "", ""]);
  });

  it("does not expand or interpret operators", () => {
    assert.deepEqual(shellSplit("$HOME a;b #c |"), ["$HOME", "a;b", "#c", "|"]);
  });

  const errors: Array<[string, string]> = [
    ["'abc", "command has an unterminated single-quoted string"],
    ['"abc', "command has an unterminated double-quoted string"],
    ['"abc\\"', "command has an unterminated double-quoted string"],
    ["abc\\", "command ends with an unfinished backslash escape"],
  ];
  for (const [input, message] of errors) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => shellSplit(input),
        (err: unknown) =>
          err instanceof ErrInvalidConfig && err.message === `invalid configuration: ${message}`,
      );
    });
  }
});

describe("shellQuote / shellSplit round trip", () => {
  it("returns random argv unchanged (2000 cases)", () => {
    const seed = 0x5eed;
    const rand = mulberry32(seed);
    for (let i = 0; i < 2000; i++) {
      const argv = randomArgv(rand);
      const quoted = shellQuote(argv);
      assert.deepEqual(
        shellSplit(quoted),
        argv,
        `seed ${seed} case ${i}: ${JSON.stringify(quoted)}`,
      );
    }
  });

  it("agrees with /bin/sh on random argv (60 cases)", () => {
    const seed = 0xc0ffee;
    const rand = mulberry32(seed);
    for (let i = 0; i < 60; i++) {
      const argv = randomArgv(rand);
      const quoted = shellQuote(argv);
      assert.deepEqual(
        argvFromRealShell(quoted),
        argv,
        `seed ${seed} case ${i}: ${JSON.stringify(quoted)}`,
      );
    }
  });
});
