import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrInvalidConfig } from "../../src/errors.js";
import {
  parseCount,
  parseCpus,
  parseDurationSeconds,
  parseMemoryMb,
} from "../../src/config/index.js";

function rejects(fn: () => unknown, message: string) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ErrInvalidConfig, `expected ErrInvalidConfig, got ${String(err)}`);
    assert.equal(err.message, `invalid configuration: ${message}`);
    return true;
  });
}

const NOT_PLAIN_INTEGERS = [
  "",
  " 12",
  "12 ",
  "12abc",
  "1e3",
  "0x10",
  "+5",
  "-5",
  "5.0",
  "1_000",
  "١٢",
];

describe("parseMemoryMb", () => {
  it("accepts plain decimal integers", () => {
    assert.equal(parseMemoryMb("512"), 512);
    assert.equal(parseMemoryMb("0"), 0);
    assert.equal(parseMemoryMb("0064"), 64);
  });
  for (const text of NOT_PLAIN_INTEGERS) {
    it(`rejects ${JSON.stringify(text)}, naming the flag`, () =>
      rejects(
        () => parseMemoryMb(text),
        `--memory must be a whole number of MB, got ${JSON.stringify(text)}`,
      ));
  }
  it("uses the flag name it is given", () =>
    rejects(
      () => parseMemoryMb("1G", "--disk-size"),
      '--disk-size must be a whole number of MB, got "1G"',
    ));
  it("rejects numbers beyond exact integers", () =>
    rejects(
      () => parseMemoryMb("9007199254740993"),
      '--memory must be a whole number below 2^53, got "9007199254740993"',
    ));
});

describe("parseCount", () => {
  it("accepts plain decimal integers", () => {
    assert.equal(parseCount("3", "--n"), 3);
  });
  for (const text of NOT_PLAIN_INTEGERS) {
    it(`rejects ${JSON.stringify(text)}`, () =>
      rejects(
        () => parseCount(text, "--mtu"),
        `--mtu must be a whole number, got ${JSON.stringify(text)}`,
      ));
  }
});

describe("parseCpus", () => {
  it("accepts integers and decimals", () => {
    assert.equal(parseCpus("2"), 2);
    assert.equal(parseCpus("0.5"), 0.5);
    assert.equal(parseCpus(".5"), 0.5);
    assert.equal(parseCpus("1.25"), 1.25);
  });
  for (const text of [
    "",
    "1e3",
    "abc",
    "12abc",
    "-1",
    "+1",
    "1.",
    "Infinity",
    "NaN",
    "0x2",
    " 1",
  ]) {
    it(`rejects ${JSON.stringify(text)}`, () =>
      rejects(
        () => parseCpus(text),
        `--cpus must be a decimal number such as 1, 2 or 0.5, got ${JSON.stringify(text)}`,
      ));
  }
});

describe("parseDurationSeconds", () => {
  const ok: Array<[string, number]> = [
    ["300", 300],
    ["0", 0],
    ["1.5", 1.5],
    ["250ms", 0.25],
    ["5m", 300],
    ["1h30m", 5400],
    ["1h30m15s", 5415],
    ["1.1s", 1.1],
    [".5s", 0.5],
    ["2h", 7200],
    ["1500us", 0.0015],
    ["1500\u00b5s", 0.0015],
    ["1000000ns", 0.001],
    ["1m500ms", 60.5],
    ["0s", 0],
  ];
  for (const [text, seconds] of ok) {
    it(`reads ${JSON.stringify(text)} as ${seconds} s`, () =>
      assert.equal(parseDurationSeconds(text, "--timeout"), seconds));
  }
  for (const text of [
    "",
    "5 m",
    "5x",
    "m",
    "1h-30m",
    "-5s",
    "+5s",
    "1e3s",
    "5M",
    "5sec",
    "300s ",
    "1.s",
  ]) {
    it(`rejects ${JSON.stringify(text)}`, () =>
      rejects(
        () => parseDurationSeconds(text, "--graceful-shutdown"),
        `--graceful-shutdown must be seconds (300) or a duration such as "250ms", "5m" or "1h30m", got ${JSON.stringify(text)}`,
      ));
  }
});
