import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ErrInvalidConfig } from "../../src/errors.js";
import { mergeEnv, parseEnvFile, parseEnvFlag } from "../../src/config/index.js";

const dir = mkdtempSync(join(tmpdir(), "wheellock-config-env-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function envFile(text: string): string {
  const path = join(dir, `env-${fileCount++}`);
  writeFileSync(path, text);
  return path;
}

function throwsConfig(fn: () => unknown, message: string) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ErrInvalidConfig, `expected ErrInvalidConfig, got ${String(err)}`);
    assert.equal(err.message, `invalid configuration: ${message}`);
    return true;
  });
}

describe("parseEnvFlag", () => {
  it("splits on the first =, keeping = and empty values", () => {
    assert.deepEqual(parseEnvFlag("K=V", {}), { name: "K", value: "V" });
    assert.deepEqual(parseEnvFlag("K=a=b=c", {}), { name: "K", value: "a=b=c" });
    assert.deepEqual(parseEnvFlag("K=", {}), { name: "K", value: "" });
    assert.deepEqual(parseEnvFlag("K= spaced ", {}), { name: "K", value: " spaced " });
  });

  it("reads a bare name from the host environment, empty values included", () => {
    assert.deepEqual(parseEnvFlag("HOME", { HOME: "/home/u" }), { name: "HOME", value: "/home/u" });
    assert.deepEqual(parseEnvFlag("E", { E: "" }), { name: "E", value: "" });
  });

  it("defaults to process.env", () => {
    process.env.WHEELLOCK_TEST_ENV_FLAG = "from-process";
    try {
      assert.deepEqual(parseEnvFlag("WHEELLOCK_TEST_ENV_FLAG"), {
        name: "WHEELLOCK_TEST_ENV_FLAG",
        value: "from-process",
      });
    } finally {
      delete process.env.WHEELLOCK_TEST_ENV_FLAG;
    }
  });

  it("rejects an unset bare name", () => {
    throwsConfig(() => parseEnvFlag("NOPE", {}), "environment variable is not set: NOPE");
  });

  it("rejects an empty name", () => {
    throwsConfig(() => parseEnvFlag("=V", {}), 'environment variable name is empty in "=V"');
    throwsConfig(() => parseEnvFlag("", {}), 'environment variable name is empty in ""');
  });

  it("rejects NUL in the name or the value", () => {
    throwsConfig(
      () => parseEnvFlag("A\0B=1", {}),
      'environment variable name contains NUL: "A\\u0000B" in "A\\u0000B=1"',
    );
    throwsConfig(() => parseEnvFlag("A=x\0", {}), "environment variable A value contains NUL");
  });
});

describe("parseEnvFile", () => {
  it("trims lines, skips blanks and comments, reads bare names from the host", () => {
    const path = envFile(
      '# comment\n\n  A=1  \r\nB=x=y\n   # indented comment\nHOST_ONE\nQ="quoted"\nE=\n',
    );
    assert.deepEqual(parseEnvFile(path, { HOST_ONE: "h" }), [
      { name: "A", value: "1" },
      { name: "B", value: "x=y" },
      { name: "HOST_ONE", value: "h" },
      { name: "Q", value: '"quoted"' },
      { name: "E", value: "" },
    ]);
  });

  it("ignores a leading byte-order mark", () => {
    assert.deepEqual(parseEnvFile(envFile("\uFEFFA=1\n"), {}), [{ name: "A", value: "1" }]);
  });

  it("reports path:line for a bad line, counting skipped lines", () => {
    const path = envFile("A=1\n\n# c\nMISSING\n");
    throwsConfig(
      () => parseEnvFile(path, {}),
      `${path}:4: environment variable is not set: MISSING`,
    );
    const path2 = envFile("A=1\n=oops\n");
    throwsConfig(
      () => parseEnvFile(path2, {}),
      `${path2}:2: environment variable name is empty in "=oops"`,
    );
  });

  it("reports a file that cannot be read", () => {
    const path = join(dir, "does-not-exist");
    assert.throws(
      () => parseEnvFile(path, {}),
      (err: unknown) =>
        err instanceof ErrInvalidConfig &&
        err.message.startsWith(`invalid configuration: cannot read env file ${path}: `) &&
        err.message.includes("ENOENT"),
    );
  });
});

describe("mergeEnv", () => {
  it("applies files in order, then flags, later wins", () => {
    const f1 = envFile("A=file1\nB=file1\nC=file1\n");
    const f2 = envFile("B=file2\nC=file2\n");
    assert.deepEqual(mergeEnv([f1, f2], ["C=flag", "D", "D=flag-later"], { D: "host" }), {
      A: "file1",
      B: "file2",
      C: "flag",
      D: "flag-later",
    });
  });

  it("returns an empty object for no input", () => {
    assert.deepEqual(mergeEnv([], [], {}), {});
  });

  it("stores __proto__ as an ordinary variable", () => {
    const env = mergeEnv([], ["__proto__=x"], {});
    assert.deepEqual(Object.keys(env), ["__proto__"]);
    assert.equal(Object.getPrototypeOf(env), Object.prototype);
  });

  it("stops at the first bad flag", () => {
    throwsConfig(
      () => mergeEnv([], ["A=1", "UNSET_X"], {}),
      "environment variable is not set: UNSET_X",
    );
  });
});
